package attribution

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

// newRealStore returns a Store on a real redis-server (skipped under -short
// or without the binary, see redistest).
func newRealStore(t testing.TB, ttl time.Duration) (*Store, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	rdb, err := NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return NewStore(rdb, ttl), srv
}

func TestRealExpiry(t *testing.T) {
	long, _ := newRealStore(t, time.Hour)
	short := NewStore(long.rdb, time.Second)
	k := Key{WhatsApp, testWABA, testUser}
	ck, _ := contextKey(k)

	record(t, long, waTouch(testUser, "ARAfirst", t0))
	mustGet(t, long, k)
	// A newer click renews the expiry to the recording store's ttl.
	record(t, short, waTouch(testUser, "ARAnewer", t0.Add(time.Minute)))
	if pttl := long.rdb.PTTL(t.Context(), ck).Val(); pttl > time.Second || pttl == -1 {
		t.Fatalf("PTTL after a newer click with ttl 1s = %v; want ≤ 1s", pttl)
	}
	poll.CheckFor(t, 10*time.Second, func() error {
		if _, err := long.Get(t.Context(), k); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("Get = %v; want ErrNotFound once the ttl passed", err)
		}
		return nil
	})
	// The phone alias expires with the same ttl.
	poll.CheckFor(t, 10*time.Second, func() error {
		if n := long.rdb.Exists(t.Context(), aliasKey(testPhone)).Val(); n != 0 {
			return errors.New("alias still present")
		}
		return nil
	})
}

// The Lua upsert runs on real Redis (Lua 5.1, the server's locale) exactly as
// under miniredis: same state for every arrival order, ties included.
func TestRealLatestClickWinsAndDuplicates(t *testing.T) {
	s, _ := newRealStore(t, 0)
	ctx := t.Context()
	clicks := []Touch{
		waTouch("", "ARAfirst", t0),
		waTouch("", "ARAmiddle", t0.Add(time.Hour)),
		waTouch("", "ARAtieA", t0.Add(2*time.Hour)),
		waTouch("", "ARAtieB\xff", t0.Add(2*time.Hour)),
	}
	var want string
	for i, order := range permutations(clicks) {
		user := fmt.Sprintf("1555000%04d", i)
		for _, c := range order {
			c.UserID = user
			record(t, s, c, c) // every delivery twice
		}
		got := mustGet(t, s, Key{WhatsApp, testWABA, user})
		if !got.FirstSeen.Equal(t0) || !got.LastSeen.Equal(t0.Add(2*time.Hour)) {
			t.Errorf("order %d: first %v last %v; want %v, %v", i, got.FirstSeen, got.LastSeen, t0, t0.Add(2*time.Hour))
		}
		ck, _ := contextKey(got.Key)
		raw := s.rdb.Get(ctx, ck).Val()
		if i == 0 {
			want = raw[headerSize:]
			if got.ClickID != "ARAtieB\xff" {
				t.Errorf("tie winner = %q; want the bytewise greater ARAtieB\\xff", got.ClickID)
			}
		}
		if raw[headerSize:] != want {
			t.Errorf("order %d stored click %q; want the same click for every order", i, got.ClickID)
		}
	}
}

func TestRealPhoneNumberIDAndLookup(t *testing.T) {
	s, _ := newRealStore(t, 0)
	record(t, s, waTouch(testUser, testClid, t0))
	got := mustGet(t, s, Key{WhatsApp, testPhone, testUser})
	if got.BusinessID != testWABA || got.ClickID != testClid {
		t.Errorf("Get by phone_number_id = %v %q; want the context under the WABA id", got.Key, got.ClickID)
	}
	cs, err := s.Lookup(t.Context(), []Key{{WhatsApp, testPhone, testUser}, {WhatsApp, testPhone, "404"}, {WhatsApp, testWABA, testUser}})
	if err != nil {
		t.Fatal(err)
	}
	if cs[0] == nil || cs[0].BusinessID != testWABA || cs[1] != nil || cs[2] == nil {
		t.Errorf("Lookup = %v, %v, %v; want hit (WABA key), nil, hit", cs[0], cs[1], cs[2])
	}
}

// TestRealCluster runs the store on a one-node Redis Cluster, which refuses
// a script whose keys span hash slots (CROSSSLOT): a write of many
// conversations must still store each one, merge as on a single node, and
// resolve phone_number_id.
func TestRealCluster(t *testing.T) {
	srv := redistest.StartCluster(t)
	rdb, err := NewClient(srv.ClusterURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		t.Fatalf("NewClient(%q) = %T; want *redis.ClusterClient", srv.ClusterURL(), rdb)
	}
	s := NewStore(rdb, 0)
	var touches []Touch
	for i := range 200 {
		user := fmt.Sprintf("1632%07d", i)
		touches = append(touches, waTouch(user, "ARAold", t0), waTouch(user, "ARAnew", t0.Add(time.Minute)))
	}
	record(t, s, touches...)
	record(t, s, touches[:100]...) // duplicates change nothing
	keys := make([]Key, 0, 200)
	for i := 0; i < len(touches); i += 2 {
		keys = append(keys, Key{WhatsApp, testPhone, touches[i].UserID}) // by phone_number_id
	}
	cs, err := s.Lookup(t.Context(), keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		if c == nil || c.BusinessID != testWABA || c.ClickID != "ARAnew" || !c.FirstSeen.Equal(t0) {
			t.Fatalf("context %d = %+v; want the newer click under the WABA id, first seen %v", i, c, t0)
		}
	}
}

// countHook counts what go-redis sends: single commands and pipelines.
type countHook struct{ process, pipelines, piped atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.process.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		h.piped.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func TestRealRoundTrips(t *testing.T) {
	s, _ := newRealStore(t, 0)
	ctx := t.Context()
	var touches []Touch
	var direct, viaPhone []Key
	for i := range 500 {
		tc := waTouch(fmt.Sprintf("1631%07d", i), testClid, t0)
		touches = append(touches, tc)
		direct = append(direct, tc.Key)
		viaPhone = append(viaPhone, Key{WhatsApp, testPhone, tc.UserID})
	}
	record(t, s, touches...) // also loads the script: EVALSHA, then EVAL
	h := &countHook{}
	s.rdb.AddHook(h)
	count := func(name string, want int64, f func() error) {
		t.Helper()
		h.process.Store(0)
		h.pipelines.Store(0)
		h.piped.Store(0)
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := h.process.Load() + h.pipelines.Load(); got != want {
			t.Errorf("%s: %d round trips (%d commands, %d pipelines); want %d", name, got, h.process.Load(), h.pipelines.Load(), want)
		}
	}
	count("Record of 500 touches", 1, func() error { return s.Record(ctx, touches) })
	// One script call for the whole write: its fixed cost in Redis is paid
	// once, not per touch (the alias SET was written by the first Record).
	if n := h.piped.Load(); n != 1 {
		t.Errorf("Record of 500 touches sent %d commands; want 1 (one EVALSHA)", n)
	}
	count("Lookup of 500 keys", 1, func() error {
		cs, err := s.Lookup(ctx, direct)
		for i, c := range cs {
			if c == nil {
				return fmt.Errorf("key %d not found", i)
			}
		}
		return err
	})
	count("Lookup of 500 phone_number_id keys", 2, func() error {
		cs, err := s.Lookup(ctx, viaPhone)
		for i, c := range cs {
			if c == nil || c.BusinessID != testWABA {
				return fmt.Errorf("key %d = %v; want found under the WABA id", i, c)
			}
		}
		return err
	})
	count("Get", 1, func() error { _, err := s.Get(ctx, direct[0]); return err })
}

func TestRealStoreDownAndBack(t *testing.T) {
	s, srv := newRealStore(t, 0)
	record(t, s, waTouch(testUser, "ARAbefore", t0))

	srv.Kill()
	// A guard, not a timing assertion: a dead Redis must not hang Record.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := s.Record(ctx, []Touch{waTouch(testUser, testClid, t0)})
	if err == nil {
		t.Fatal("Record with Redis killed succeeded; want an error")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Record with Redis killed hung until the guard: %v", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with Redis killed succeeded")
	}

	srv.Restart() // empty, and without the script: exercises the EVAL fallback
	poll.CheckFor(t, 10*time.Second, func() error {
		return s.Record(t.Context(), []Touch{waTouch(testUser, testClid, t0.Add(time.Second))})
	})
	if c := mustGet(t, s, Key{WhatsApp, testPhone, testUser}); c.ClickID != testClid {
		t.Errorf("after restart: click %q; want the one recorded after the restart", c.ClickID)
	}
}

// TestRealBSUIDLookup is the sender's join on a real Redis: a WhatsApp
// conversion may name the phone (wa_id or messages[].from) or the BSUID,
// with the WABA id or the phone_number_id as business, and must find the
// click whichever it names.
func TestRealBSUIDLookup(t *testing.T) {
	s, _ := newRealStore(t, 0)
	bsuidOnly := waTouch(testBSUID, "CLID-BSUID-ONLY", t0)
	both := waTouch("16315551234", "CLID-BOTH", t0)
	both.Aliases = []string{"US.99887766554433221100"}
	fromDiffers := waTouch("5511988881234", "CLID-FROM", t0)
	fromDiffers.Aliases = []string{"BR.70012345678901234567", "BR.ENT.9081726354", "551188881234"}
	record(t, s, bsuidOnly, both, fromDiffers)
	checkFoundBy(t, s, "CLID-BSUID-ONLY", testBSUID)
	checkFoundBy(t, s, "CLID-BOTH", "16315551234", "US.99887766554433221100")
	checkFoundBy(t, s, "CLID-FROM", "5511988881234", "551188881234", "BR.70012345678901234567", "BR.ENT.9081726354")

	// A later click by BSUID alone (the user hid the phone) wins there; the
	// phone key keeps the last click that named the phone.
	later := waTouch("US.99887766554433221100", "CLID-LATER", t0.Add(time.Hour))
	record(t, s, later)
	checkFoundBy(t, s, "CLID-LATER", "US.99887766554433221100")
	checkFoundBy(t, s, "CLID-BOTH", "16315551234")
}
