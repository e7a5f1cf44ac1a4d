package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

func openTestStore(t *testing.T, dir string) (*embeddedStore, *redis.Client) {
	t.Helper()
	st, err := openStore(dir)
	if err != nil {
		t.Fatalf("openStore: %v", err)
	}
	c := st.Client()
	t.Cleanup(func() { c.Close(); st.m.Close() })
	return st, c
}

// crash abandons a store the way a killed process would: no Close, no
// final compaction; only what the journal already holds remains.
func crash(st *embeddedStore) { st.m.Close() }

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
	crash(st)
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
}

func TestStoreExpiredKeysStayExpired(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	st, c := openTestStore(t, dir)
	must(t, c.Set(ctx, "brief", "x", 20*time.Millisecond).Err())
	waitFor(t, 5*time.Second, "expiry", func() bool { return c.Exists(ctx, "brief").Val() == 0 })
	crash(st)
	_, c2 := openTestStore(t, dir)
	if c2.Exists(ctx, "brief").Val() != 0 {
		t.Error("an expired key came back after a restart")
	}
}

func TestStoreTornLastLine(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	st, c := openTestStore(t, dir)
	must(t, c.Set(ctx, "k", "v", 0).Err())
	crash(st)
	// A crash in the middle of an append leaves half a line, never acked.
	f, err := os.OpenFile(filepath.Join(dir, journalName), os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteString(`{"k":"other","v":"dm`)
	must(t, errors.Join(err, f.Close()))

	st2, c2 := openTestStore(t, dir)
	if got := c2.Get(ctx, "k").Val(); got != "v" {
		t.Errorf("GET k = %q; want v", got)
	}

	// Corruption before the end is not guessed about.
	crash(st2)
	must(t, os.WriteFile(filepath.Join(dir, journalName), []byte("garbage\n{\"k\":\"a\",\"v\":\"YQ==\"}\n"), 0o600))
	if _, err := openStore(dir); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("openStore with a corrupt journal: %v; want an error naming line 1", err)
	}
}

func TestStoreCloseCompacts(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	st, c := openTestStore(t, dir)
	for range 50 {
		must(t, c.Set(ctx, "k", "v", 0).Err())
	}
	c.Close()
	must(t, st.Close())
	data, err := os.ReadFile(filepath.Join(dir, journalName))
	must(t, err)
	if n := strings.Count(string(data), "\n"); n != 1 {
		t.Errorf("journal after Close has %d lines; want 1 (one live key)", n)
	}
	_, c2 := openTestStore(t, dir)
	if got := c2.Get(ctx, "k").Val(); got != "v" {
		t.Errorf("GET k = %q; want v", got)
	}
}

func TestStoreJournalFailureFailsTheWrite(t *testing.T) {
	dir := t.TempDir()
	st, c := openTestStore(t, dir)
	st.mu.Lock()
	st.f.Close() // writes to the journal now fail
	st.mu.Unlock()
	if err := c.Set(context.Background(), "k", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "journal") {
		t.Errorf("SET with a broken journal: err = %v; want a journal error", err)
	}
}

func TestWrittenKeys(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		cmd  redis.Cmder
		want []string
		all  bool
	}{
		{cmd: redis.NewStatusCmd(ctx, "set", "a", "1", "px", 5), want: []string{"a"}},
		{cmd: redis.NewStringCmd(ctx, "get", "a")},
		{cmd: redis.NewCmd(ctx, "evalsha", "abc", 2, "k1", "k2", "argv"), want: []string{"k1", "k2"}},
		{cmd: redis.NewCmd(ctx, "EVAL", "return 1", 0, "argv"), want: []string{}},
		{cmd: redis.NewIntCmd(ctx, "del", "a", "b"), want: []string{"a", "b"}},
		{cmd: redis.NewStatusCmd(ctx, "mset", "a", "1", "b", "2"), want: []string{"a", "b"}},
		{cmd: redis.NewStatusCmd(ctx, "flushall"), all: true},
	}
	for _, tt := range tests {
		got, all := writtenKeys(tt.cmd)
		if strings.Join(got, ",") != strings.Join(tt.want, ",") || all != tt.all {
			t.Errorf("writtenKeys(%v) = %q, %v; want %q, %v", tt.cmd.Args(), got, all, tt.want, tt.all)
		}
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
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
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
	crash(st)

	_, c2 := openTestStore(t, dir)
	if n := c2.DBSize(ctx).Val(); n != 8*50+1 {
		t.Errorf("keys after restart = %d; want %d", n, 8*50+1)
	}
	if got := c2.Get(ctx, "shared").Val(); got != final {
		t.Errorf("shared after restart = %q; want the last write %q", got, final)
	}
}
