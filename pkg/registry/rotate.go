package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RotateResult counts what RotateKey did.
type RotateResult struct {
	Records     int // records looked at
	Reencrypted int // records whose secrets were sealed again with the current key
}

// RotateKey seals every secret that is not sealed with the keyring's
// current key again with it, record by record (a record changed meanwhile
// is read again). It goes on past a record it cannot open and returns an
// error naming each such business; running it again after fixing the
// keyring finishes the job. Afterwards the older keys can be dropped from
// REGISTRY_KEY.
func (s *Store) RotateKey(ctx context.Context) (RotateResult, error) {
	var res RotateResult
	if s.keys == nil {
		return res, ErrNoKey
	}
	var errs []error
	cursor := ""
	for {
		ids, next, err := s.listIDs(ctx, cursor, MaxPageSize)
		if err != nil {
			return res, err
		}
		for _, id := range ids {
			changed, err := s.rotateOne(ctx, id)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			res.Records++
			if changed {
				res.Reencrypted++
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return res, errors.Join(errs...)
}

// maxSwapAttempts bounds the retries of a record that keeps changing under
// RotateKey; every change made meanwhile already uses the current key.
const maxSwapAttempts = 5

func (s *Store) rotateOne(ctx context.Context, id string) (bool, error) {
	for range maxSwapAttempts {
		old, err := s.rdb.HGet(ctx, bizKey(id), fieldData).Result()
		if err != nil {
			if errors.Is(err, redis.Nil) {
				return false, nil // deleted meanwhile
			}
			return false, fmt.Errorf("registry: rotate business %s: %w", id, err)
		}
		var r record
		if err := json.Unmarshal([]byte(old), &r); err != nil {
			return false, fmt.Errorf("registry: rotate business %s: unreadable record: %w", id, err)
		}
		changed := false
		for _, f := range []struct {
			name string
			v    *string
		}{{fieldAccessToken, &r.AccessToken}, {fieldAppSecret, &r.AppSecret}} {
			if *f.v == "" || strings.HasPrefix(*f.v, sealedPrefix+s.keys.current+":") {
				continue
			}
			plain, _, err := s.keys.open(id, f.name, *f.v)
			if err != nil {
				return false, err
			}
			if *f.v, err = s.keys.seal(id, f.name, plain); err != nil {
				return false, err
			}
			changed = true
		}
		if !changed {
			return false, nil
		}
		data, err := json.Marshal(r)
		if err != nil {
			return false, err
		}
		ok, err := s.swap.Run(ctx, s.rdb, []string{bizKey(id)}, old, string(data)).Int64()
		if err != nil {
			return false, fmt.Errorf("registry: rotate business %s: %w", id, err)
		}
		if ok == 1 {
			return true, nil
		}
	}
	return false, fmt.Errorf("registry: rotate business %s: changed %d times while rotating; run again", id, maxSwapAttempts)
}
