package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/embedstore"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/registry"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

const testStorePassword = "store-test-password-0123456789"

func openTestStore(t *testing.T, dir string) (*embedstore.Store, *redis.Client) {
	t.Helper()
	st, err := openStore(dir, testStorePassword, time.Second)
	if err != nil {
		t.Fatalf("openStore: %v", err)
	}
	c := storeClient(st, testStorePassword)
	t.Cleanup(func() { c.Close(); st.Close() })
	return st, c
}

// crash abandons a store. The store does no work at Close beyond what a
// killed process leaves on disk (every acknowledged write is already
// fsynced); internal/embedstore's TestSIGKILLDuringCompaction kills a
// real process to show it.
func crash(st *embedstore.Store, c *redis.Client) {
	c.Close()
	st.Close()
}

func TestStoreSurvivesACrash(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	st, c := openTestStore(t, dir)
	must(t, c.Set(ctx, "plain", "v1", 0).Err())
	must(t, c.Set(ctx, "ttl", "v2", time.Hour).Err())
	must(t, c.Set(ctx, "gone", "x", 0).Err())
	must(t, c.Del(ctx, "gone").Err())
	must(t, c.Set(ctx, "short", "x", 50*time.Millisecond).Err())
	shortGoneBy := time.Now().Add(50 * time.Millisecond)
	// Scripts and pipelines, the way attribution and the ledger write.
	store := attribution.NewStore(c, time.Hour)
	key := attribution.Key{Channel: attribution.Messenger, BusinessID: "109876543210987", UserID: "6789012345678901"}
	must(t, store.Record(ctx, []attribution.Touch{{Key: key, AdID: "120210000000000111", Time: time.Unix(1763900000, 0)}}))
	// A script run alone (EVALSHA, then EVAL on NOSCRIPT), as the ledger does.
	script := redis.NewScript(`redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1`)
	must(t, script.Run(ctx, c, []string{"ctm:ledger:{ord-1}"}, "sent", 3600000).Err())
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "p1", "a", 0)
		p.Set(ctx, "p2", "b", 0)
		return nil
	})
	must(t, err)
	// The business registry: hashes, sorted sets and scripts, its token
	// sealed with a development key kept in the data directory.
	regKey, _, err := registry.LoadOrCreateDevKey(dir)
	must(t, err)
	keys, err := registry.ParseKeyring(regKey)
	must(t, err)
	const bizToken = "EAAstoreCrashToken0123456789"
	_, err = registry.NewStore(c, keys).Put(ctx, registry.Business{ID: "102290129340398", Channel: registry.WhatsApp,
		DatasetID: "5550001", AccessToken: registry.NewSecret(bizToken), PhoneNumberIDs: []string{"106540352242922"}, Enabled: true})
	must(t, err)
	crash(st, c)
	// "short" expires while the process is down.
	waitFor(t, 5*time.Second, "the short key's expiry", func() bool { return time.Now().After(shortGoneBy) })

	_, c2 := openTestStore(t, dir)
	for k, want := range map[string]string{"plain": "v1", "ttl": "v2", "p1": "a", "p2": "b", "ctm:ledger:{ord-1}": "sent"} {
		if got, err := c2.Get(ctx, k).Result(); err != nil || got != want {
			t.Errorf("after restart GET %s = %q, %v; want %q", k, got, err, want)
		}
	}
	if ttl := c2.TTL(ctx, "ttl").Val(); ttl <= 50*time.Minute || ttl > time.Hour {
		t.Errorf("after restart TTL ttl = %v; want about 1h", ttl)
	}
	if n := c2.Exists(ctx, "gone", "short").Val(); n != 0 {
		t.Error("a deleted or expired key came back")
	}
	got, err := attribution.NewStore(c2, time.Hour).Get(ctx, key)
	if err != nil || got.AdID != "120210000000000111" {
		t.Errorf("context after restart = %+v, %v; want the recorded click", got, err)
	}
	regKey2, created, err := registry.LoadOrCreateDevKey(dir)
	must(t, err)
	keys2, err := registry.ParseKeyring(regKey2)
	must(t, err)
	reg := registry.NewStore(c2, keys2)
	if b, err := reg.Get(ctx, "102290129340398"); created || err != nil || b.AccessToken.Reveal() != bizToken || b.DatasetID != "5550001" {
		t.Errorf("business after restart: %v (new key %v); want it, its token decrypting with the same key file", err, created)
	}
	if id, err := reg.BusinessForPhone(ctx, "106540352242922"); err != nil || id != "102290129340398" {
		t.Errorf("phone after restart = %q, %v; want the business", id, err)
	}
	if p, err := reg.List(ctx, "", 10); err != nil || len(p.Businesses) != 1 {
		t.Errorf("list after restart = %d businesses, %v; want 1", len(p.Businesses), err)
	}
}

func TestStoreExpiredKeysStayExpired(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	st, c := openTestStore(t, dir)
	must(t, c.Set(ctx, "brief", "x", 20*time.Millisecond).Err())
	waitFor(t, 5*time.Second, "expiry", func() bool { return c.Exists(ctx, "brief").Val() == 0 })
	crash(st, c)
	_, c2 := openTestStore(t, dir)
	if c2.Exists(ctx, "brief").Val() != 0 {
		t.Error("an expired key came back after a restart")
	}
}

// TestStoreImportsLegacyJournal: a DATA_DIR written by an earlier
// all-in-one (DATA_DIR/redis.journal, JSON lines) keeps its keys.
func TestStoreImportsLegacyJournal(t *testing.T) {
	dir := t.TempDir()
	line := fmt.Sprintf(`{"k":"ctm:ledger:{ord-1}","v":"c2VudA==","x":%d}`+"\n", time.Now().Add(time.Hour).UnixMilli())
	must(t, os.WriteFile(filepath.Join(dir, legacyJournal), []byte(line+`{"k":"old","v":"eA=="}`+"\n"), 0o600))
	_, c := openTestStore(t, dir)
	ctx := t.Context()
	if got := c.Get(ctx, "ctm:ledger:{ord-1}").Val(); got != "sent" {
		t.Errorf("imported ledger entry = %q; want sent", got)
	}
	if ttl := c.TTL(ctx, "ctm:ledger:{ord-1}").Val(); ttl < 59*time.Minute {
		t.Errorf("imported TTL = %v; want about 1h", ttl)
	}
	if got := c.Get(ctx, "old").Val(); got != "x" {
		t.Errorf("imported old = %q; want x", got)
	}
}

func TestStoreMetrics(t *testing.T) {
	st, c := openTestStore(t, t.TempDir())
	must(t, c.Set(t.Context(), "k", "value", 0).Err())
	reg := prometheus.NewRegistry()
	reg.MustRegister(newStoreCollector(st))
	mfs, err := reg.Gather()
	must(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	for name, want := range map[string]float64{"embedded_store_keys": 1, "embedded_store_bytes": 6, "embedded_store_snapshot_bytes": 0, "embedded_store_expired_keys_total": 0} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v); want %v", name, v, ok, want)
		}
	}
	for _, mf := range mfs {
		if mf.GetName() == "embedded_store_sync_seconds" {
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n == 0 {
				t.Error("embedded_store_sync_seconds counted no sync; the SET had one")
			}
		}
	}
	if got["embedded_store_journal_bytes"] <= 0 {
		t.Errorf("embedded_store_journal_bytes = %v; want the SET's record", got["embedded_store_journal_bytes"])
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.CheckFor(t, d, func() error { return poll.Until(what, cond()) })
}

// TestStoreConcurrentWrites: writers share fsyncs, and after a crash every
// acknowledged write is there, the contended key with its final value.
func TestStoreConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	st, c := openTestStore(t, dir)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if err := c.Set(ctx, fmt.Sprintf("k%d-%d", w, i), "v", 0).Err(); err != nil {
					t.Error(err)
				}
				if err := c.Set(ctx, "shared", fmt.Sprintf("%d-%d", w, i), 0).Err(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	final := c.Get(ctx, "shared").Val()
	crash(st, c)

	_, c2 := openTestStore(t, dir)
	if n := c2.DBSize(ctx).Val(); n != 8*50+1 {
		t.Errorf("keys after restart = %d; want %d", n, 8*50+1)
	}
	if got := c2.Get(ctx, "shared").Val(); got != final {
		t.Errorf("shared after restart = %q; want the last write %q", got, final)
	}
}
