package registry

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// CacheConfig sets a Cache up; zero values take the defaults.
type CacheConfig struct {
	// Refresh is how often the registry's version is polled (one GET);
	// default 1 s, so that a change is in effect within a few seconds.
	Refresh time.Duration
	// TTL bounds how long an entry is served without a read from Redis even
	// when no change was seen (a safety net for a missed poll); default 5 min.
	TTL time.Duration
	// MaxEntries bounds memory; past it, an arbitrary entry is evicted.
	// Default 100,000 (a record is well under 1 KB in memory).
	MaxEntries int
	// OnError is told of a failed poll (the caller logs it); it may be nil.
	OnError func(error)
	// Now defaults to time.Now.
	Now func() time.Time
}

func (c *CacheConfig) setDefaults() {
	if c.Refresh <= 0 {
		c.Refresh = time.Second
	}
	if c.TTL <= 0 {
		c.TTL = 5 * time.Minute
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = 100_000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Cache serves registry lookups from memory. Records are fetched on demand
// and kept (found or not found) until Run sees them change, their TTL runs
// out, or they are evicted: memory follows the businesses a sender actually
// serves, not the size of the registry. When Redis fails, an expired entry
// is served rather than an error. Run polls the registry's version
// every Refresh and drops the entries of the businesses that changed, so
// the next lookup reads the new record; the phone_number_id map is dropped
// whole on any change (changes are rare, lookups refill it).
type Cache struct {
	store *Store
	cfg   CacheConfig
	sf    singleflight.Group

	mu      sync.Mutex
	version int64 // -1 until the first poll
	byID    map[string]entry
	byPhone map[string]phoneEntry
}

type entry struct {
	b     Business
	found bool
	at    time.Time
}

type phoneEntry struct {
	id string // "" = not found
	at time.Time
}

// NewCache returns a cache over store; call Run to keep it current.
func NewCache(store *Store, cfg CacheConfig) *Cache {
	cfg.setDefaults()
	return &Cache{store: store, cfg: cfg, version: -1, byID: map[string]entry{}, byPhone: map[string]phoneEntry{}}
}

// Run polls for changes until ctx is done, and then returns nil. A failed
// poll is reported to OnError and tried again at the next tick.
func (c *Cache) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Refresh)
	defer t.Stop()
	for {
		if err := c.Poll(ctx); err != nil && ctx.Err() == nil && c.cfg.OnError != nil {
			c.cfg.OnError(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Version is the registry version the cache has caught up with (-1 before
// its first poll): a change stored at version v is in effect here once
// Version() >= v.
func (c *Cache) Version() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// Poll reads the changes since the last poll once and drops what changed.
func (c *Cache) Poll(ctx context.Context) error {
	c.mu.Lock()
	since := c.version
	c.mu.Unlock()
	v, ids, reset, err := c.store.Changes(ctx, max(since, 0))
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case since < 0:
		// First poll: entries fetched before it may predate v; drop them.
		reset = len(c.byID) > 0 || len(c.byPhone) > 0
	case v == since && !reset:
		return nil
	}
	if reset {
		clear(c.byID)
	} else {
		for _, id := range ids {
			delete(c.byID, id)
		}
	}
	clear(c.byPhone)
	c.version = v
	return nil
}

// Business returns the record of id, or ErrNotFound.
func (c *Cache) Business(ctx context.Context, id string) (Business, error) {
	now := c.cfg.Now()
	c.mu.Lock()
	e, ok := c.byID[id]
	c.mu.Unlock()
	if !ok || now.Sub(e.at) >= c.cfg.TTL {
		fresh, err := c.fetch(ctx, id)
		switch {
		case err == nil:
			e = fresh
		case !ok:
			return Business{}, err
		}
		// Redis failed on an expired entry: serve it; nothing can change
		// the registry while Redis is down.
	}
	if !e.found {
		return Business{}, ErrNotFound
	}
	return e.b, nil
}

// fetch reads id from the store, shared by concurrent callers. The entry is
// kept only if no poll ran meanwhile: a change seen by that poll may have
// come after the read.
func (c *Cache) fetch(ctx context.Context, id string) (entry, error) {
	v, err, _ := c.sf.Do("b:"+id, func() (any, error) {
		c.mu.Lock()
		start := c.version
		c.mu.Unlock()
		b, err := c.store.Get(ctx, id)
		e := entry{b: b, found: err == nil, at: c.cfg.Now()}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return entry{}, err
		}
		c.mu.Lock()
		if c.version == start {
			c.makeRoom(len(c.byID))
			c.byID[id] = e
		}
		c.mu.Unlock()
		return e, nil
	})
	if err != nil {
		return entry{}, err
	}
	return v.(entry), nil
}

// makeRoom evicts an arbitrary entry (map order is random) when full.
func (c *Cache) makeRoom(n int) {
	if n < c.cfg.MaxEntries {
		return
	}
	for k := range c.byID {
		delete(c.byID, k)
		return
	}
}

// BusinessForPhone returns the WhatsApp business that lists phoneNumberID,
// or ErrNotFound.
func (c *Cache) BusinessForPhone(ctx context.Context, phoneNumberID string) (Business, error) {
	now := c.cfg.Now()
	c.mu.Lock()
	p, ok := c.byPhone[phoneNumberID]
	c.mu.Unlock()
	if !ok || now.Sub(p.at) >= c.cfg.TTL {
		v, err, _ := c.sf.Do("p:"+phoneNumberID, func() (any, error) {
			c.mu.Lock()
			start := c.version
			c.mu.Unlock()
			id, err := c.store.BusinessForPhone(ctx, phoneNumberID)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return phoneEntry{}, err
			}
			p := phoneEntry{id: id, at: c.cfg.Now()}
			c.mu.Lock()
			if c.version == start {
				if len(c.byPhone) >= c.cfg.MaxEntries {
					clear(c.byPhone)
				}
				c.byPhone[phoneNumberID] = p
			}
			c.mu.Unlock()
			return p, nil
		})
		switch {
		case err == nil:
			p = v.(phoneEntry)
		case !ok:
			return Business{}, err
		}
	}
	if p.id == "" {
		return Business{}, ErrNotFound
	}
	return c.Business(ctx, p.id)
}

// ErrorEvery returns an OnError that passes the first failure of a run of
// failed polls to report, then at most one every d, so that a registry that
// stays unreachable (or a store without its commands) does not write a log
// line a second. It is safe for concurrent use.
func ErrorEvery(d time.Duration, report func(error)) func(error) {
	var mu sync.Mutex
	var last time.Time
	return func(err error) {
		mu.Lock()
		now := time.Now()
		due := now.Sub(last) >= d
		if due {
			last = now
		}
		mu.Unlock()
		if due {
			report(err)
		}
	}
}

// Len is the number of businesses held (found or not), for a gauge.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}
