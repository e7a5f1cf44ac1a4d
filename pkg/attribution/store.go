package attribution

import (
	"context"
	_ "embed"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

//go:embed upsert.lua
var upsertLua string

// Store keeps contexts in Redis. It is safe for concurrent use. The key layout
// is described in codec.go; every conversation's key carries its own hash tag,
// so Store works unchanged on a single node, Sentinel or Redis Cluster.
type Store struct {
	rdb    redis.UniversalClient
	ttl    time.Duration
	upsert *redis.Script
	now    func() time.Time

	// aliasMu guards aliasAt: when this Store last wrote each
	// phone_number_id → WABA alias. A business number sends thousands of
	// touches, and re-sending its alias with each was a third of ingest's
	// Redis commands (BENCHMARKS.md), so an alias is written again only
	// after aliasRefresh, or after any failed write (Redis may have come back
	// empty). A restart without persistence that no write sees fail leaves an
	// alias missing for at most aliasRefresh: conversions naming the
	// phone_number_id then wait (sender CONTEXT_WAIT), they are not lost.
	aliasMu sync.Mutex
	aliasAt map[string]aliasWrite
}

type aliasWrite struct {
	waba string
	at   time.Time
}

// aliasRefresh is how often a known alias is written again; maxAliases bounds
// the memory of the cache (business numbers are few; past the bound it restarts).
const (
	aliasRefresh = time.Minute
	maxAliases   = 100_000
)

// NewStore returns a Store over rdb whose contexts expire ttl after their
// latest click (DefaultTTL when ttl is 0).
func NewStore(rdb redis.UniversalClient, ttl time.Duration) *Store {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Store{rdb: rdb, ttl: ttl, upsert: redis.NewScript(upsertLua), now: time.Now, aliasAt: map[string]aliasWrite{}}
}

// Client returns the Store's Redis client.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// TTL returns how long a context lives after its latest click is recorded.
func (s *Store) TTL() time.Duration { return s.ttl }

// Record stores touches in one round trip and, on a single node or
// Sentinel, one script call: a click with a ctwa_clid beats one without,
// then the latest click wins (the earliest for a touch with FirstTouch), the
// first seen time is kept, and a duplicate delivery changes nothing (see
// upsert.lua). WhatsApp touches
// with a PhoneNumberID also record phone_number_id → WABA id. If any touch is
// invalid, nothing is stored and the error wraps ErrInvalidTouch. Every touch
// is taken to be an ad click: callers pass only messages with a referral.
// Times are kept to the millisecond.
func (s *Store) Record(ctx context.Context, touches []Touch) error {
	if len(touches) == 0 {
		return nil
	}
	keys := make([]string, 0, len(touches))
	args := make([]any, 0, len(touches)+1)
	aliases := make(map[string]string)
	for i := range touches {
		t := &touches[i]
		if err := checkTouch(i, t); err != nil {
			return err
		}
		c := touchContext(t)
		v := encodeContext(&c)
		// The same click under every id of the user: each key merges on its
		// own, and a conversion naming any id reads one key.
		for _, id := range t.userIDs() {
			k := t.Key
			k.UserID = id
			ck, _ := contextKey(k)
			keys = append(keys, ck)
			args = append(args, v)
		}
		if t.PhoneNumberID != "" && t.PhoneNumberID != t.BusinessID {
			aliases[t.PhoneNumberID] = t.BusinessID
		}
	}
	now := s.now()
	s.dropFreshAliases(aliases, now)
	args = append(args, s.ttl.Milliseconds())
	run := func(eval bool) ([]redis.Cmder, error) {
		// The write must outlive a failover before ingest answers 200:
		// with REDIS_MIN_REPLICAS it carries a WAIT (internal/replicas).
		dctx, w := replicas.Durable(ctx)
		cmds, err := s.rdb.Pipelined(dctx, func(p redis.Pipeliner) error {
			s.upsertCalls(ctx, p, eval, keys, args)
			// The alias lives as long as a context recorded now can, and
			// every touch on that number renews it.
			for pn, waba := range aliases {
				p.Set(ctx, aliasKey(pn), waba, s.ttl)
			}
			return nil
		})
		if err == nil {
			err = w.Err()
		}
		return cmds, err
	}
	cmds, err := run(false)
	if err != nil && noScript(cmds) {
		// The server lost its script cache (restart, failover, SCRIPT FLUSH).
		// Upserts are idempotent, so sending the whole batch again with EVAL,
		// which also caches the script, is safe. This costs one more round
		// trip, once per server.
		_, err = run(true)
	}
	if err != nil {
		// Redis may be coming back empty (a restart without persistence):
		// forget what was written so the next touches write aliases again.
		s.forgetAliases()
		return fmt.Errorf("attribution: record: %w", err)
	}
	s.rememberAliases(aliases, now)
	return nil
}

// dropFreshAliases removes from aliases those this Store wrote, with the same
// WABA id, less than aliasRefresh ago.
func (s *Store) dropFreshAliases(aliases map[string]string, now time.Time) {
	if len(aliases) == 0 {
		return
	}
	s.aliasMu.Lock()
	defer s.aliasMu.Unlock()
	for pn, waba := range aliases {
		if w, ok := s.aliasAt[pn]; ok && w.waba == waba && now.Sub(w.at) < aliasRefresh {
			delete(aliases, pn)
		}
	}
}

// rememberAliases records that aliases were written at now (only after the
// write succeeded, so a failed write is retried with the next touch).
func (s *Store) rememberAliases(aliases map[string]string, now time.Time) {
	if len(aliases) == 0 {
		return
	}
	s.aliasMu.Lock()
	defer s.aliasMu.Unlock()
	if len(s.aliasAt)+len(aliases) > maxAliases {
		s.aliasAt = map[string]aliasWrite{}
	}
	for pn, waba := range aliases {
		s.aliasAt[pn] = aliasWrite{waba: waba, at: now}
	}
}

func (s *Store) forgetAliases() {
	s.aliasMu.Lock()
	defer s.aliasMu.Unlock()
	clear(s.aliasAt)
}

// maxScriptKeys bounds the keys of one script call. A script blocks Redis
// while it runs (about 2 µs a key), so a delivery of thousands of clicks is
// several calls in the same pipeline: one round trip still, and no call
// holds Redis for more than a few milliseconds.
const maxScriptKeys = 1000

// upsertCalls queues the upsert of keys (args: their values, then the ttl).
// One call takes up to maxScriptKeys keys, which a single node or Sentinel allows; on
// Redis Cluster, where a script may touch one hash slot only, each key goes
// in a call of its own (contexts of different conversations rarely share a
// slot, so grouping them would seldom save a call).
func (s *Store) upsertCalls(ctx context.Context, p redis.Pipeliner, eval bool, keys []string, args []any) {
	call := s.upsert.EvalSha
	if eval {
		call = s.upsert.Eval
	}
	if _, cluster := s.rdb.(*redis.ClusterClient); !cluster {
		ttl := args[len(keys)]
		for i := 0; i < len(keys); i += maxScriptKeys {
			j := min(i+maxScriptKeys, len(keys))
			call(ctx, p, keys[i:j], append(args[i:j:j], ttl)...)
		}
		return
	}
	ttl := args[len(keys)]
	for i, k := range keys {
		call(ctx, p, []string{k}, args[i], ttl)
	}
}

func noScript(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if err := c.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			return true
		}
	}
	return false
}

// Get returns the context for k, resolving a WhatsApp phone_number_id given as
// BusinessID to its WABA id. It returns ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, k Key) (Context, error) {
	cs, err := s.lookup(ctx, []Key{k})
	if err != nil {
		return Context{}, fmt.Errorf("attribution: get: %w", err)
	}
	if cs[0] == nil {
		return Context{}, ErrNotFound
	}
	return *cs[0], nil
}

// Lookup returns the contexts for keys in one round trip in the common case
// (a second for WhatsApp keys given by phone_number_id, and for ids that
// changed: an alias names the conversation's key; ChangeID). The result has
// one entry per key, nil where no context is stored. A returned Context's Key
// is the key it is stored under: the WABA id, not the phone_number_id, and
// for an id that changed, the id whose context it is.
func (s *Store) Lookup(ctx context.Context, keys []Key) ([]*Context, error) {
	cs, err := s.lookup(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("attribution: lookup: %w", err)
	}
	return cs, nil
}

// Expiry returns when the context stored under k expires (k as a returned
// Context's Key: the key it is stored under); zero when it is not stored.
func (s *Store) Expiry(ctx context.Context, k Key) (time.Time, error) {
	ck, ok := contextKey(k)
	if !ok {
		return time.Time{}, nil
	}
	d, err := s.rdb.PTTL(ctx, ck).Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("attribution: expiry: %w", err)
	}
	if d < 0 {
		return time.Time{}, nil
	}
	return s.now().Add(d), nil
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("attribution: ping: %w", err)
	}
	return nil
}
