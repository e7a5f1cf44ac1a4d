package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// SealedKeyIDs counts the registry's records by the id of each key their
// secrets are sealed with: what a keyring must hold to read them all. It
// needs no keyring, and reads only the key ids, never a secret. The
// all-in-one asks before it makes a development key, which could open none
// of them.
func (s *Store) SealedKeyIDs(ctx context.Context) (map[string]int, error) {
	ids := map[string]int{}
	cursor := ""
	for {
		page, next, err := s.listIDs(ctx, cursor, MaxPageSize)
		if err != nil {
			return nil, err
		}
		for _, id := range page {
			data, err := s.rdb.HGet(ctx, bizKey(id), fieldData).Result()
			if errors.Is(err, redis.Nil) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, fmt.Errorf("registry: read business %s: %w", id, err)
			}
			var r record
			if err := json.Unmarshal([]byte(data), &r); err != nil {
				return nil, fmt.Errorf("registry: business %s: unreadable record: %w", id, err)
			}
			seen := map[string]bool{}
			for _, v := range []string{r.AccessToken, r.AppSecret} {
				rest, ok := strings.CutPrefix(v, sealedPrefix)
				if kid, _, ok2 := strings.Cut(rest, ":"); ok && ok2 && !seen[kid] {
					seen[kid] = true
					ids[kid]++
				}
			}
		}
		if next == "" {
			return ids, nil
		}
		cursor = next
	}
}
