package attribution

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// IDChange is WhatsApp's word that a user's id changed: a system message
// user_changed_number (a new phone, and since August 2026 a new BSUID with
// it) or user_changed_user_id (a new BSUID). Meta, "System messages webhook
// reference":
// https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/system/
type IDChange struct {
	Channel    string
	BusinessID string   // the WABA id
	Old        []string // the ids the user had: personal data
	New        []string // the ids the user has now: personal data
}

// ChangeOutcome is what Store.ChangeID did.
type ChangeOutcome int

// The outcomes of ChangeID.
const (
	// ChangeLinked: at least one new id now finds the conversation's context.
	ChangeLinked ChangeOutcome = iota + 1
	// ChangeNoContext: no old id has a context (no click, or it expired), so
	// there is nothing to carry; nothing was written.
	ChangeNoContext
	// ChangeOwnContext: every new id has a context of its own already (a
	// click under the new id came first), which is kept.
	ChangeOwnContext
)

// ErrInvalidIDChange means ChangeID was given a change it cannot key: an
// unknown channel, a bad business id, no old or no new id, a malformed id.
var ErrInvalidIDChange = errors.New("attribution: invalid id change")

// maxChangeIDs bounds the ids of either side: a phone, a BSUID and a parent
// BSUID, and messages[].from besides, are the most WhatsApp gives.
const maxChangeIDs = 4

// Validate reports why c cannot be applied, or nil. The error carries no
// personal data.
func (c *IDChange) Validate() error {
	reason := ""
	switch _, ok := channelCode(c.Channel); {
	case !ok:
		reason = "unknown channel"
	case !validID(c.BusinessID):
		reason = "bad business id"
	case len(c.Old) == 0 || len(c.New) == 0:
		reason = "needs an old and a new user id"
	case len(c.Old) > maxChangeIDs || len(c.New) > maxChangeIDs:
		reason = "too many user ids"
	}
	for _, id := range append(slices.Clip(c.Old), c.New...) {
		if reason == "" && !validID(id) {
			reason = "bad user id"
		}
	}
	if reason != "" {
		return fmt.Errorf("%w: %s", ErrInvalidIDChange, reason)
	}
	return nil
}

// linkLua writes an alias unless the key holds a context of its own: a
// click recorded under the new id between ChangeID's read and its write is
// the conversation's context from then on (see upsert.lua), not overwritten.
// KEYS[1] the new id's context key, ARGV[1] the alias, ARGV[2] its ttl (ms).
var linkLua = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and #v >= 13 and string.byte(v, 1) % 16 == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

// ChangeID makes the conversation of c's old ids found under its new ids
// too: each new id's key becomes an alias naming the old id's context (not a
// copy that could diverge from it), with that context's remaining TTL, so
// the alias goes when the context does. When several old ids have contexts
// (a phone and a BSUID each keep a copy) the one recorded last is named. A
// chain resolves as it is written: when an old id is itself an alias, the
// new ids name the context it names, so lookups follow at most one alias.
// The old ids keep their contexts. A new id that has a context of its own
// keeps it. It takes two round trips (three through a chain).
func (s *Store) ChangeID(ctx context.Context, c IDChange) (ChangeOutcome, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	var olds, news []string
	for _, id := range c.Old {
		if !slices.Contains(olds, id) && !slices.Contains(c.New, id) {
			olds = append(olds, id)
		}
	}
	for _, id := range c.New {
		if !slices.Contains(news, id) && !slices.Contains(c.Old, id) {
			news = append(news, id)
		}
	}
	if len(olds) == 0 || len(news) == 0 {
		return ChangeOwnContext, nil // the same ids: nothing changed
	}
	target, err := s.changeTarget(ctx, c.Channel, c.BusinessID, olds)
	if err != nil {
		return 0, fmt.Errorf("attribution: change id: %w", err)
	}
	if target == nil {
		return ChangeNoContext, nil
	}
	alias := encodeAlias(target.user, target.noClickID)
	var links []*redis.Cmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range news {
			if id == target.user {
				continue // the user went back to the id whose context it is
			}
			ck, _ := contextKey(Key{c.Channel, c.BusinessID, id})
			links = append(links, linkLua.Eval(ctx, p, []string{ck}, alias, target.ttl.Milliseconds()))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("attribution: change id: %w", err)
	}
	for _, l := range links {
		if n, _ := l.Int(); n == 1 {
			return ChangeLinked, nil
		}
	}
	return ChangeOwnContext, nil
}

// changeContext is the context a change's new ids are to name.
type changeContext struct {
	user      string
	ttl       time.Duration
	noClickID bool
}

// changeTarget finds, among olds, the context recorded last (the longest
// remaining TTL), following an old id that is itself an alias to the
// context it names. Nil when there is none.
func (s *Store) changeTarget(ctx context.Context, channel, business string, olds []string) (*changeContext, error) {
	var best *changeContext
	for hops := 0; hops < 2 && len(olds) > 0; hops++ {
		gets := make([]*redis.StringCmd, len(olds))
		ttls := make([]*redis.DurationCmd, len(olds))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range olds {
				ck, _ := contextKey(Key{channel, business, id})
				gets[i], ttls[i] = p.Get(ctx, ck), p.PTTL(ctx, ck)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		var next []string
		for i, id := range olds {
			v, err := gets[i].Result()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if t, ok := aliasTarget(v); ok {
				// Only the first round follows: an alias names a context.
				if hops == 0 && validID(t) && !slices.Contains(next, t) {
					next = append(next, t)
				}
				continue
			}
			var cx Context
			if err := decodeContext(v, &cx); err != nil {
				return nil, err
			}
			ttl := ttls[i].Val()
			if ttl == -1 {
				ttl = s.ttl // no expiry (set by hand): give the alias a whole TTL
			}
			if ttl <= 0 {
				continue // expired between the two commands
			}
			if best == nil || ttl > best.ttl {
				best = &changeContext{user: id, ttl: ttl, noClickID: cx.NoClickID}
			}
		}
		if best != nil {
			return best, nil
		}
		olds = next
	}
	return best, nil
}
