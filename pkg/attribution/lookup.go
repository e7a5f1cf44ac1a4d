package attribution

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// lookup reads keys' contexts: one round trip, then at most two more for
// the keys given by phone_number_id and those whose id changed (an alias).
func (s *Store) lookup(ctx context.Context, keys []Key) ([]*Context, error) {
	out := make([]*Context, len(keys))
	gets := make([]*redis.StringCmd, len(keys))
	// One alias GET per WhatsApp business id, in the same round trip, so that
	// a phone_number_id costs a second trip only when its context is missing.
	aliases := make(map[string]*redis.StringCmd)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			ck, ok := contextKey(k)
			if !ok {
				continue // cannot be stored, so it is not found
			}
			gets[i] = p.Get(ctx, ck)
			if _, seen := aliases[k.BusinessID]; !seen && k.Channel == WhatsApp {
				aliases[k.BusinessID] = p.Get(ctx, aliasKey(k.BusinessID))
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	var again []hop
	for i, g := range gets {
		h, err := settleValue(g, keys[i], &out[i], false)
		if err != nil {
			return nil, err
		}
		if h != nil {
			h.i = i
			again = append(again, *h)
			continue
		}
		if out[i] == nil && g != nil && keys[i].Channel == WhatsApp {
			if waba, _ := aliases[keys[i].BusinessID].Result(); validID(waba) && waba != keys[i].BusinessID {
				k := keys[i]
				k.BusinessID = waba // keyed by WABA id instead
				again = append(again, hop{i: i, k: k})
			}
		}
	}
	// At most two more trips: the WABA id's key, then the conversation an
	// id-change alias there names. An alias is followed once: one names a
	// context, never another alias (idchange.go resolves chains as it writes).
	for round := 0; round < 2 && len(again) > 0; round++ {
		cmds := make([]*redis.StringCmd, len(again))
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, h := range again {
				ck, _ := contextKey(h.k)
				cmds[j] = p.Get(ctx, ck)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		var next []hop
		for j, h := range again {
			nh, err := settleValue(cmds[j], h.k, &out[h.i], h.followed)
			if err != nil {
				return nil, err
			}
			if nh != nil {
				nh.i = h.i
				next = append(next, *nh)
			}
		}
		again = next
	}
	return out, nil
}

// hop is a key to read again for keys[i]: under the WABA id, or the
// conversation an alias names (followed).
type hop struct {
	i        int
	k        Key
	followed bool
}

// settleValue sets *dst to the context g fetched for k, if it holds one. When
// it holds an alias it returns the key the alias names instead, unless an
// alias was followed already (followed), which counts as not found.
func settleValue(g *redis.StringCmd, k Key, dst **Context, followed bool) (*hop, error) {
	if g == nil {
		return nil, nil
	}
	v, err := g.Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if target, ok := aliasTarget(v); ok {
		if followed || !validID(target) {
			return nil, nil
		}
		k.UserID = target
		return &hop{k: k, followed: true}, nil
	}
	c := &Context{Key: k}
	if err := decodeContext(v, c); err != nil {
		return nil, err
	}
	*dst = c
	return nil, nil
}
