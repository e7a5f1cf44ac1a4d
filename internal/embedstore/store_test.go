package embedstore

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
)

// fakeClock is a settable clock for TTL tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1764000000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openTest opens a store in dir and a client of it, both closed at cleanup.
func openTest(t *testing.T, opts Options) (*Store, *redis.Client) {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() {
		c.Close()
		s.Close()
	})
	return s, c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestBasicCommands(t *testing.T) {
	clock := newFakeClock()
	_, c := openTest(t, Options{Dir: t.TempDir(), Now: clock.Now})
	ctx := t.Context()
	must(t, c.Set(ctx, "a", "1", 0).Err())
	if got := c.Get(ctx, "a").Val(); got != "1" {
		t.Errorf("GET a = %q; want 1", got)
	}
	if err := c.Get(ctx, "missing").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET missing: %v; want redis.Nil", err)
	}
	if ok := c.SetNX(ctx, "a", "2", time.Minute).Val(); ok {
		t.Error("SETNX on an existing key succeeded")
	}
	if ok := c.SetNX(ctx, "b", "2", time.Minute).Val(); !ok {
		t.Error("SETNX on a new key failed")
	}
	if ttl := c.PTTL(ctx, "b").Val(); ttl != time.Minute {
		t.Errorf("PTTL b = %v; want 1m (the fake clock stands still)", ttl)
	}
	must(t, c.Do(ctx, "SET", "b", "3", "KEEPTTL").Err())
	if ttl := c.PTTL(ctx, "b").Val(); ttl != time.Minute {
		t.Errorf("PTTL b after SET KEEPTTL = %v; want 1m", ttl)
	}
	if n := c.Exists(ctx, "a", "b", "c").Val(); n != 2 {
		t.Errorf("EXISTS a b c = %d; want 2", n)
	}
	if n := c.Del(ctx, "a", "c").Val(); n != 1 {
		t.Errorf("DEL a c = %d; want 1", n)
	}
	must(t, c.PExpire(ctx, "b", 10*time.Second).Err())
	if ttl := c.TTL(ctx, "b").Val(); ttl != 10*time.Second {
		t.Errorf("TTL b = %v; want 10s", ttl)
	}
	if n := c.DBSize(ctx).Val(); n != 1 {
		t.Errorf("DBSIZE = %d; want 1", n)
	}
	if err := c.Do(ctx, "NOPE").Err(); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("NOPE: %v; want unknown command", err)
	}
	// A Lua script, by SHA then (NOSCRIPT) by source, as go-redis does.
	sc := redis.NewScript(`redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]), redis.call('GET', 'none')}`)
	got, err := sc.Run(ctx, c, []string{"s"}, "v", 5000).Slice()
	if err != nil || len(got) != 3 || got[0] != "v" || got[1] != int64(5000) || got[2] != nil {
		t.Errorf("script = %v, %v; want [v 5000 <nil>] (false is null, as in Redis)", got, err)
	}
	if err := c.Eval(ctx, `return redis.call('NOPE')`, nil).Err(); err == nil {
		t.Error("a script calling an unknown command did not fail")
	}
	if v, err := c.Eval(ctx, `return redis.pcall('INCRBY', 's', 'x')['err'] ~= nil`, nil).Int(); err != nil || v != 1 {
		t.Errorf("pcall of a failing command = %v, %v; want an error table", v, err)
	}
}

// TestSameRepliesAsRedis sends the same commands to redis-server and to the
// store and compares the replies.
func TestSameRepliesAsRedis(t *testing.T) {
	real := startRedis(t)
	_, c := openTest(t, Options{Dir: t.TempDir()})
	ctx := t.Context()
	cmds := [][]any{
		{"SET", "k", "v"}, {"GET", "k"}, {"SET", "k", "w", "NX"}, {"SET", "k", "w", "XX", "GET"},
		{"SET", "n", "1", "PX", "100000"}, {"SET", "n", "2", "KEEPTTL"}, {"SET", "n", "x", "EX", "0"},
		{"SET", "n", "x", "PX", "-5"}, {"SET", "k", "v", "EX"}, {"SET", "k", "v", "NX", "XX"},
		{"SETNX", "k", "z"}, {"SETNX", "fresh", "z"}, {"EXISTS", "k", "fresh", "nope", "k"},
		{"TTL", "k"}, {"TTL", "nope"}, {"PEXPIRE", "nope", "10"}, {"PEXPIRE", "k", "100000"},
		{"PERSIST", "k"}, {"TTL", "k"}, {"DEL", "k", "nope", "fresh"}, {"GET", "k"},
		{"MSET", "a", "1", "b", "2"}, {"MGET", "a", "nope", "b"}, {"INCR", "a"}, {"INCRBY", "a", "10"},
		{"INCR", "b"}, {"GETDEL", "b"}, {"TYPE", "a"}, {"TYPE", "b"}, {"STRLEN", "a"},
		{"EVAL", "return {1, 'two', false, 3}", "0"},
		{"EVAL", "return redis.call('GET', KEYS[1])", "1", "a"},
		{"EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", "1", "c", "x"},
		{"EVAL", "return redis.status_reply('FINE')", "0"},
		{"EVAL", "return redis.error_reply('MY bad')", "0"},
		{"EVAL", "return 3.9", "0"}, {"EVAL", "return true", "0"}, {"EVAL", "return nil", "0"},
		{"EVAL", "return KEYS[1] .. ARGV[1]", "1", "k", "a"}, {"EVAL", "return 1", "-1"},
		{"EVAL", "return redis.call('EXISTS', 'a', 'c')", "0"},
		{"EVALSHA", "0123456789012345678901234567890123456789", "0"},
		{"SCRIPT", "LOAD", "return 7"}, {"EVALSHA", "fd0bd0b6a5c9b87cbf6a1b6c88d6c1b3d0e9a8d3", "0"},
		{"SCRIPT", "EXISTS", "fd0bd0b6a5c9b87cbf6a1b6c88d6c1b3d0e9a8d3", "0123456789012345678901234567890123456789"},
		{"PING"}, {"ECHO", "hi"}, {"DBSIZE"}, {"FLUSHALL"}, {"DBSIZE"}, {"GET", "a"},
	}
	for _, args := range cmds {
		want, werr := real.Do(ctx, args...).Result()
		got, gerr := c.Do(ctx, args...).Result()
		if fmt.Sprint(got) != fmt.Sprint(want) || (gerr == nil) != (werr == nil) || errCode(gerr) != errCode(werr) {
			t.Errorf("%v: store = %#v, %v; redis-server = %#v, %v", args, got, gerr, want, werr)
		}
	}
}

// errCode is the first word of a Redis error (ERR, NOSCRIPT, …): messages
// differ in wording between versions, codes do not.
func errCode(err error) string {
	if err == nil || errors.Is(err, redis.Nil) {
		return fmt.Sprint(err)
	}
	code, _, _ := strings.Cut(err.Error(), " ")
	return code
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	ctx := t.Context()
	s, c := openTest(t, Options{Dir: dir, Now: clock.Now})
	must(t, c.Set(ctx, "plain", "v1", 0).Err())
	must(t, c.Set(ctx, "ttl", "v2", time.Hour).Err())
	must(t, c.Set(ctx, "short", "x", time.Minute).Err())
	must(t, c.Set(ctx, "gone", "x", 0).Err())
	must(t, c.Del(ctx, "gone").Err())
	must(t, c.Do(ctx, "SET", "kept", "1", "PX", "600000").Err())
	must(t, c.Do(ctx, "SET", "kept", "2", "KEEPTTL").Err())
	must(t, s.Compact())
	must(t, c.Set(ctx, "after", "v3", 0).Err())
	must(t, c.Set(ctx, "plain", "v1b", 0).Err())
	c.Close()
	must(t, s.Close())

	clock.Add(2 * time.Minute) // "short" expires while the store is down
	s2, c2 := openTest(t, Options{Dir: dir, Now: clock.Now})
	for k, want := range map[string]string{"plain": "v1b", "ttl": "v2", "after": "v3", "kept": "2"} {
		if got, err := c2.Get(ctx, k).Result(); err != nil || got != want {
			t.Errorf("after restart GET %s = %q, %v; want %q", k, got, err, want)
		}
	}
	if ttl := c2.PTTL(ctx, "ttl").Val(); ttl != 58*time.Minute {
		t.Errorf("after restart PTTL ttl = %v; want 58m", ttl)
	}
	if ttl := c2.PTTL(ctx, "kept").Val(); ttl != 8*time.Minute {
		t.Errorf("after restart PTTL kept = %v; want 8m (KEEPTTL kept the deadline)", ttl)
	}
	if n := c2.Exists(ctx, "gone", "short").Val(); n != 0 {
		t.Error("a deleted or expired key came back")
	}
	if st := s2.Stats(); st.Keys != 4 || st.JournalBytes == 0 || st.SnapshotBytes == 0 {
		t.Errorf("Stats = %+v; want 4 keys, a journal and a snapshot", st)
	}
}

func TestTornTailAndCorruption(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s, c := openTest(t, Options{Dir: dir})
	must(t, c.Set(ctx, "k", "v", 0).Err())
	must(t, c.Set(ctx, "k2", "v2", 0).Err())
	c.Close()
	must(t, s.Close())
	first := segmentName(dir, 0)
	data, err := os.ReadFile(first)
	must(t, err)
	end := recordsEnd(t, data)
	// A crash in the middle of an append leaves part of a record, never acked.
	rec := appendSetRecord(nil, "other", "value", 0)
	copy(data[end:], rec[:len(rec)-3])
	must(t, os.WriteFile(first, data, 0o600))

	s2, c2 := openTest(t, Options{Dir: dir})
	if got := c2.Get(ctx, "k2").Val(); got != "v2" {
		t.Errorf("GET k2 = %q; want v2", got)
	}
	if c2.Exists(ctx, "other").Val() != 0 {
		t.Error("a torn record was applied")
	}
	must(t, c2.Set(ctx, "k3", "v3", 0).Err())
	c2.Close()
	must(t, s2.Close())
	// The torn tail was cleared: the next segment's records are fine.
	s3, c3 := openTest(t, Options{Dir: dir})
	if got := c3.Get(ctx, "k3").Val(); got != "v3" {
		t.Errorf("GET k3 = %q; want v3", got)
	}
	c3.Close()
	must(t, s3.Close())
	// A torn record with records after it (in the next segment) is not a
	// crash mid-append: not guessed about.
	must(t, os.WriteFile(first, data, 0o600))
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("Open with records after a torn one: %v; want an error saying corrupt", err)
	}
	// Nor is a damaged record in the middle of a segment.
	copy(data[end:], make([]byte, len(rec)))
	data[10] ^= 0xff
	must(t, os.WriteFile(first, data, 0o600))
	for _, n := range []uint64{1, 2, 3} {
		os.Remove(segmentName(dir, n))
	}
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("Open with a damaged first record: %v; want an error saying corrupt", err)
	}
}

// recordsEnd is where a segment's records end and its zero fill begins.
func recordsEnd(t *testing.T, data []byte) int {
	t.Helper()
	off := 0
	for {
		_, n, err := nextRecord(data[off:])
		if errors.Is(err, errEnd) {
			return off
		}
		must(t, err)
		off += n
	}
}

func TestJournalFailureFailsTheWrite(t *testing.T) {
	s, c := openTest(t, Options{Dir: t.TempDir()})
	s.j.fail(errors.New("disk full"))
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("SET with a broken journal: %v; want the journal's error", err)
	}
}

func TestLegacyJournalImport(t *testing.T) {
	dir := t.TempDir()
	legacy := filepath.Join(dir, "redis.journal")
	far := time.Now().Add(time.Hour).UnixMilli()
	lines := `{"k":"a","v":"MQ=="}` + "\n" + fmt.Sprintf(`{"k":"b","v":"Mg==","x":%d}`, far) + "\n" +
		`{"k":"c","v":"Mw=="}` + "\n" + `{"k":"c","d":true}` + "\n" + `{"k":"torn","v":"`
	must(t, os.WriteFile(legacy, []byte(lines), 0o600))
	s, c := openTest(t, Options{Dir: filepath.Join(dir, "store"), Legacy: legacy})
	ctx := t.Context()
	if a, b := c.Get(ctx, "a").Val(), c.Get(ctx, "b").Val(); a != "1" || b != "2" {
		t.Errorf("imported a, b = %q, %q; want 1, 2", a, b)
	}
	if n := c.Exists(ctx, "c", "torn").Val(); n != 0 {
		t.Errorf("EXISTS c torn = %d; want 0", n)
	}
	if ttl := c.TTL(ctx, "b").Val(); ttl < 59*time.Minute {
		t.Errorf("TTL b = %v; want about 1h", ttl)
	}
	must(t, s.Compact())
	if _, err := os.Stat(legacy); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("legacy journal still there after a compaction: %v", err)
	}
}

// TestConcurrentWritesDuringCompaction: writers share fsyncs and go on
// while snapshots are written; after a restart every acknowledged write is
// there, the contended key with its final value.
func TestConcurrentWritesDuringCompaction(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s, c := openTest(t, Options{Dir: dir})
	done := make(chan struct{})
	var compactions int
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := s.Compact(); err != nil {
				t.Error(err)
				return
			}
			compactions++
		}
	})
	var writers sync.WaitGroup
	for w := range 8 {
		writers.Go(func() {
			for i := range 100 {
				if err := c.Set(ctx, fmt.Sprintf("k%d-%d", w, i), "v", 0).Err(); err != nil {
					t.Error(err)
				}
				if err := c.Set(ctx, "shared", fmt.Sprintf("%d-%d", w, i), 0).Err(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	writers.Wait()
	close(done)
	wg.Wait()
	final := c.Get(ctx, "shared").Val()
	c.Close()
	must(t, s.Close())
	if compactions == 0 {
		t.Fatal("no compaction ran")
	}
	_, c2 := openTest(t, Options{Dir: dir})
	if n := c2.DBSize(ctx).Val(); n != 8*100+1 {
		t.Errorf("keys after restart = %d; want %d", n, 8*100+1)
	}
	if got := c2.Get(ctx, "shared").Val(); got != final {
		t.Errorf("shared after restart = %q; want the last write %q", got, final)
	}
}

func TestCompactionStartsOnGrowth(t *testing.T) {
	dir := t.TempDir()
	s, c := openTest(t, Options{Dir: dir, CompactMin: 4 << 10, SweepEvery: time.Millisecond})
	ctx := t.Context()
	for i := range 200 {
		must(t, c.Set(ctx, "k", strings.Repeat("x", 100)+fmt.Sprint(i), 0).Err())
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().SnapshotBytes == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no compaction after the journal grew: %+v", s.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startRedis(t *testing.T) *redis.Client {
	t.Helper()
	return startRealRedis(t)
}

var contextBG = context.Background()
