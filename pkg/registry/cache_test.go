package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

func runCache(t *testing.T, s *Store, cfg CacheConfig) *Cache {
	t.Helper()
	c := NewCache(s, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return c
}

// TestCacheSeesChanges changes records through one store (the admin API)
// while a cache on another (a sender) serves them.
func TestCacheSeesChanges(t *testing.T) { forBackends(t, testCacheSeesChanges) }

func testCacheSeesChanges(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	admin := newTestStore(t, rdb, testKey("k1", 'a'))
	a := testBusiness("111")
	if _, err := admin.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	c := runCache(t, newTestStore(t, rdb, testKey("k1", 'a')), CacheConfig{Refresh: 20 * time.Millisecond, TTL: time.Hour})
	got, err := c.Business(ctx, "111")
	if err != nil || got.AccessToken.Reveal() != testToken {
		t.Fatalf("Business(111) = %v; want the first token", err)
	}
	if _, err := c.Business(ctx, "222"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Business(222) = %v; want ErrNotFound", err)
	}
	if b, err := c.BusinessForPhone(ctx, "55111"); err != nil || b.ID != "111" {
		t.Fatalf("BusinessForPhone(55111) = %v; want 111", err)
	}

	a.AccessToken = NewSecret(testToken2)
	a.PhoneNumberIDs = []string{"77111"}
	if _, err := admin.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Put(ctx, testBusiness("222")); err != nil {
		t.Fatal(err)
	}
	poll.CheckFor(t, 10*time.Second, func() error {
		b, err := c.Business(ctx, "111")
		if err != nil || b.AccessToken.Reveal() != testToken2 {
			return fmt.Errorf("the cache still serves the old token of 111 (%v)", err)
		}
		if _, err := c.Business(ctx, "222"); err != nil {
			return fmt.Errorf("the cache does not see the new business 222: %v", err)
		}
		if b, err := c.BusinessForPhone(ctx, "77111"); err != nil || b.ID != "111" {
			return fmt.Errorf("the cache does not see 111's new phone: %v", err)
		}
		if _, err := c.BusinessForPhone(ctx, "55111"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("the cache still resolves 111's removed phone: %v", err)
		}
		return nil
	})

	if err := admin.Delete(ctx, "111"); err != nil {
		t.Fatal(err)
	}
	poll.CheckFor(t, 10*time.Second, func() error {
		if _, err := c.Business(ctx, "111"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("the cache still serves deleted 111: %v", err)
		}
		return nil
	})
}

// TestCacheServesFromMemory shows the cache does not read Redis per lookup:
// with Redis gone, a known business still resolves.
func TestCacheServesFromMemory(t *testing.T) {
	srv := newTestServer(t)
	// No retries: the lookups with Redis down fail at once.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	ctx := t.Context()
	s := newTestStore(t, rdb, testKey("k1", 'a'))
	if _, err := s.Put(ctx, testBusiness("111")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := NewCache(s, CacheConfig{Refresh: time.Hour, TTL: time.Minute, Now: clock})
	if err := c.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Business(ctx, "111"); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if b, err := c.Business(ctx, "111"); err != nil || b.AccessToken.Reveal() != testToken {
		t.Fatalf("Business(111) with Redis down = %v; want it from memory", err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if b, err := c.Business(ctx, "111"); err != nil || b.AccessToken.Reveal() != testToken {
		t.Fatalf("Business(111) past its TTL with Redis down = %v; want the expired entry", err)
	}
	if _, err := c.Business(ctx, "222"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Business(222), never seen, with Redis down = %v; want the Redis error", err)
	}
	if err := c.Poll(ctx); err == nil {
		t.Fatal("Poll with Redis down succeeded")
	}
}

func TestCacheTTLAndBound(t *testing.T) { forBackends(t, testCacheTTLAndBound) }

func testCacheTTLAndBound(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	s := newTestStore(t, rdb, testKey("k1", 'a'))
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := NewCache(s, CacheConfig{Refresh: time.Hour, TTL: time.Minute, MaxEntries: 3, Now: clock})
	if err := c.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Business(ctx, "111"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Business(111) = %v; want ErrNotFound", err)
	}
	// Written behind the cache's back (no version bump): only the TTL finds it.
	b := testBusiness("111")
	data, err := s.encode(&b)
	if err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, bizKey("111"), fieldData, data)
	if _, err := c.Business(ctx, "111"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Business(111) within the TTL = %v; want the cached ErrNotFound", err)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if _, err := c.Business(ctx, "111"); err != nil {
		t.Fatalf("Business(111) after the TTL = %v; want it read again", err)
	}
	for i := range 10 {
		c.Business(ctx, fmt.Sprintf("20%d", i))
	}
	if n := c.Len(); n > 3 {
		t.Fatalf("Len = %d; want at most MaxEntries 3", n)
	}
}

// TestCacheResetsWhenRedisForgets: a Redis that lost its data (a restart
// without persistence) has a lower version; the cache drops everything.
func TestCacheResetsWhenRedisForgets(t *testing.T) { forBackends(t, testCacheResetsWhenRedisForgets) }

func testCacheResetsWhenRedisForgets(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	s := newTestStore(t, rdb, testKey("k1", 'a'))
	for _, id := range []string{"111", "222"} {
		s.Put(ctx, testBusiness(id))
	}
	c := NewCache(s, CacheConfig{Refresh: time.Hour, TTL: time.Hour})
	c.Poll(ctx)
	c.Business(ctx, "111")
	rdb.FlushAll(ctx)
	s.Put(ctx, testBusiness("333")) // version 1, below the cache's 2
	if err := c.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Business(ctx, "111"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Business(111) after Redis lost it = %v; want ErrNotFound", err)
	}
}

func TestErrorEveryLimitsReports(t *testing.T) {
	n := 0
	f := ErrorEvery(time.Hour, func(error) { n++ })
	for range 5 {
		f(errors.New("down"))
	}
	if n != 1 {
		t.Errorf("%d reports of 5 failures within the hour; want 1", n)
	}
}
