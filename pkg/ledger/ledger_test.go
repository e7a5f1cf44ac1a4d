package ledger_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/pkg/ledger"
)

func states(rs []ledger.Result) []ledger.State {
	out := make([]ledger.State, len(rs))
	for i, r := range rs {
		out[i] = r.State
	}
	return out
}

// testLifecycle runs the state machine against rdb with a short lease.
func testLifecycle(t *testing.T, rdb redis.UniversalClient, lease time.Duration) {
	ctx := t.Context()
	l := ledger.New(rdb, time.Hour)
	ids := []string{"b1/e1", "b1/e2", "b2/e1"}

	got, err := l.Claim(ctx, "o1", lease, ids)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]ledger.State{ledger.Claimed, ledger.Claimed, ledger.Claimed}, states(got)); diff != "" {
		t.Fatalf("first Claim (-want +got):\n%s", diff)
	}

	// Another owner finds them busy with time left.
	got, err = l.Claim(ctx, "o2", lease, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if r.State != ledger.Busy || r.Wait <= 0 || r.Wait > lease {
			t.Errorf("Claim(o2)[%d] = %+v; want Busy with 0 < Wait <= %v", i, r, lease)
		}
	}
	// The same owner again is the same call repeated (a retried pipeline).
	got, err = l.Claim(ctx, "o1", lease, ids)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]ledger.State{ledger.Claimed, ledger.Claimed, ledger.Claimed}, states(got)); diff != "" {
		t.Fatalf("repeated Claim by its owner (-want +got):\n%s", diff)
	}

	// o1 posts; e1 accepted by Meta, e2 definitely failed, b2/e1 lost in flight.
	if err := l.Posting(ctx, "o1"); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkSent(ctx, ids[:1]); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, "o2", ids[1:2]); err != nil { // not the owner: no effect
		t.Fatal(err)
	}
	if got, _ := l.Claim(ctx, "o3", lease, ids[1:2]); got[0].State != ledger.Busy {
		t.Fatalf("Release by a non-owner freed the claim: %v", got[0].State)
	}
	if err := l.Release(ctx, "o1", ids[:2]); err != nil { // sent stays sent
		t.Fatal(err)
	}
	waitInDoubt(t, l, lease, ids[2])

	got, err = l.Claim(ctx, "o4", lease, ids)
	if err != nil {
		t.Fatal(err)
	}
	want := []ledger.State{ledger.Sent, ledger.Claimed, ledger.InDoubt}
	if diff := cmp.Diff(want, states(got)); diff != "" {
		t.Fatalf("Claim after expiry (-want +got):\n%s", diff)
	}
	// In doubt stays in doubt for plain claims; TakeOver takes it, never a sent one.
	if got, _ := l.Claim(ctx, "o5", lease, ids[2:]); got[0].State != ledger.InDoubt {
		t.Fatalf("in-doubt id claimed again: %v", got[0].State)
	}
	// Without an operator's request recorded out of band, TakeOver leaves it
	// in doubt too; with one, it takes it once.
	got, err = l.TakeOver(ctx, "o6", lease, []string{ids[0], ids[2]})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]ledger.State{ledger.Sent, ledger.InDoubt}, states(got)); diff != "" {
		t.Fatalf("TakeOver without AllowTakeOver (-want +got):\n%s", diff)
	}
	if err := l.AllowTakeOver(ctx, []string{ids[0], ids[2]}, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err = l.TakeOver(ctx, "o6", lease, []string{ids[0], ids[2]})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]ledger.State{ledger.Sent, ledger.Claimed}, states(got)); diff != "" {
		t.Fatalf("TakeOver (-want +got):\n%s", diff)
	}
	if n := rdb.Exists(ctx, l.Key(ids[2])+":force").Val(); n != 0 {
		t.Errorf("the take-over request outlived its use")
	}
}

// waitInDoubt polls id until its claim's lease ran out. Claim leaves a
// claimed or in-doubt key as it is, so polling with it changes nothing.
func waitInDoubt(t *testing.T, l *ledger.Ledger, lease time.Duration, id string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := l.Claim(context.Background(), "poller", lease, []string{id})
		if err != nil {
			t.Fatal(err)
		}
		if got[0].State == ledger.InDoubt {
			return
		}
		if got[0].State != ledger.Busy {
			t.Fatalf("polled %s: %v; want busy until in doubt", id, got[0].State)
		}
		if time.Now().After(deadline) {
			t.Fatal("lease never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLifecycleMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	testLifecycle(t, rdb, time.Second)
}

func TestLifecycleRedis(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	testLifecycle(t, rdb, 2*time.Second)
}

func TestSentTTL(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	l := ledger.New(rdb, 0)
	if err := l.MarkSent(t.Context(), []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if ttl := mr.TTL(l.Key("x")); ttl != ledger.DefaultSentTTL {
		t.Fatalf("sent marker TTL = %v; want %v", ttl, ledger.DefaultSentTTL)
	}
	mr.FastForward(ledger.DefaultSentTTL + time.Second)
	got, err := l.Claim(t.Context(), "o", time.Minute, []string{"x"})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].State != ledger.Claimed {
		t.Fatalf("after TTL: %v; want claimed", got[0].State)
	}
}

// A Redis restart forgets loaded scripts; the ledger reloads them.
func TestScriptReload(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	l := ledger.New(rdb, time.Hour)
	ctx := t.Context()
	if _, err := l.TakeOver(ctx, "o", time.Minute, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := l.TakeOver(ctx, "o2", time.Minute, []string{"a", "b"})
	if err != nil {
		t.Fatalf("TakeOver after SCRIPT FLUSH: %v", err)
	}
	if diff := cmp.Diff([]ledger.State{ledger.Busy, ledger.Claimed}, states(got)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, "o2", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, l.Key("b")).Val(); n != 0 {
		t.Fatalf("released key still exists")
	}
}

func TestKeyHashTag(t *testing.T) {
	l := ledger.New(nil, 0)
	if got, want := l.Key("104/ord-1"), "ctm:ledger:{104/ord-1}"; got != want {
		t.Fatalf("Key = %q; want %q", got, want)
	}
}

// loadMidway makes the next pipeline run as if another client loaded the
// scripts while it was on the wire: the first half meets an empty script
// cache (NOSCRIPT), the second half finds the scripts loaded.
type loadMidway struct {
	admin *redis.Client
	armed atomic.Bool
}

func (h *loadMidway) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *loadMidway) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *loadMidway) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) < 2 || !h.armed.CompareAndSwap(true, false) {
			return next(ctx, cmds)
		}
		if err := h.admin.ScriptFlush(ctx).Err(); err != nil {
			return err
		}
		half := len(cmds) / 2
		err1 := next(ctx, cmds[:half])
		// Another sender's claim loads the script.
		if _, err := ledger.New(h.admin, time.Hour).TakeOver(ctx, "other", time.Minute, []string{"unrelated"}); err != nil {
			return err
		}
		err2 := next(ctx, cmds[half:])
		if err1 != nil {
			return err1
		}
		return err2
	}
}

// A pipeline of which only part met NOSCRIPT is completed, not repeated:
// repeating the take-overs that did run would find them busy (its own
// owner's, refused like anyone's), and the events would end in doubt unsent.
func TestTakeOverWhileAnotherClientLoadsScripts(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	hook := &loadMidway{admin: srv.Client(t)}
	rdb.AddHook(hook)
	l := ledger.New(rdb, time.Hour)
	ids := make([]string, 10)
	for i := range ids {
		ids[i] = "b/e" + strconv.Itoa(i)
	}
	hook.armed.Store(true)
	got, err := l.TakeOver(t.Context(), "o1", time.Minute, ids)
	if err != nil {
		t.Fatal(err)
	}
	if hook.armed.Load() {
		t.Fatal("the hook did not run")
	}
	for i, r := range got {
		if r.State != ledger.Claimed {
			t.Errorf("Claim[%d] = %v; want claimed", i, r.State)
		}
	}
}

// testUnposted: a claim whose owner never began to post (killed or stalled
// between claiming and posting) is free again once its lease ends, and the
// owner, should it wake up, cannot post it any more.
// Its owners are its own: owners are unique per claiming call.
func testUnposted(t *testing.T, rdb redis.UniversalClient) {
	ctx := t.Context()
	l := ledger.New(rdb, time.Hour)
	lease := 300 * time.Millisecond
	if got, err := l.Claim(ctx, "u-o1", lease, []string{"u1", "u2"}); err != nil || got[0].State != ledger.Claimed {
		t.Fatalf("Claim(u-o1) = %v, %v", got, err)
	}
	var got []ledger.Result
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if got, err = l.Claim(ctx, "u-o2", time.Minute, []string{"u1", "u2"}); err != nil {
			t.Fatal(err)
		}
		if got[0].State != ledger.Busy || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if diff := cmp.Diff([]ledger.State{ledger.Claimed, ledger.Claimed}, states(got)); diff != "" {
		t.Fatalf("Claim(u-o2) after o1's lease ended without a post (-want +got):\n%s", diff)
	}
	if err := l.Posting(ctx, "u-o1"); !errors.Is(err, ledger.ErrFenced) {
		t.Fatalf("Posting(u-o1) after the take-over = %v; want ErrFenced", err)
	}
	if err := l.Posting(ctx, "u-o2"); err != nil {
		t.Fatalf("Posting(u-o2) = %v", err)
	}
	if err := l.Posting(ctx, "u-o2"); err != nil { // a second request of the same claim
		t.Fatalf("Posting(u-o2) again = %v", err)
	}
	if got, _ := l.Claim(ctx, "u-o3", time.Minute, []string{"u1"}); got[0].State != ledger.Busy {
		t.Fatalf("Claim(u-o3) of o2's live claim = %v; want busy", got[0].State)
	}

	// An expired claim of an older sender ("c:", which never marks its
	// posts) stays in doubt.
	past := strconv.FormatInt(time.Now().Add(-time.Minute).UnixMilli(), 10)
	if err := rdb.Set(ctx, l.Key("legacy"), "c:"+past+":old", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Claim(ctx, "u-o4", time.Minute, []string{"legacy"}); got[0].State != ledger.InDoubt {
		t.Fatalf("expired legacy claim = %v; want in doubt", got[0].State)
	}

	// Two senders finding the same stale claim: exactly one gets it.
	if err := rdb.Set(ctx, l.Key("race"), "q:"+past+":dead", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	results := make(chan ledger.State, 2)
	for _, o := range []string{"r1", "r2"} {
		go func() {
			got, err := l.Claim(ctx, o, time.Minute, []string{"race"})
			if err != nil {
				t.Error(err)
				results <- 0
				return
			}
			results <- got[0].State
		}()
	}
	a, b := <-results, <-results
	if (a == ledger.Claimed) == (b == ledger.Claimed) {
		t.Fatalf("two claims of one stale claim: %v and %v; want exactly one claimed", a, b)
	}
}

func TestUnpostedMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	testUnposted(t, rdb)
}

func TestUnpostedRedis(t *testing.T) {
	testUnposted(t, redistest.Start(t).Client(t))
}

// The whole lifecycle on a one-node Redis Cluster: every key a slot of its
// own, the scripts per key.
func TestLifecycleCluster(t *testing.T) {
	srv := redistest.StartCluster(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr}})
	t.Cleanup(func() { rdb.Close() })
	testLifecycle(t, rdb, 2*time.Second)
	testUnposted(t, rdb)
}

// Ids of different (business, event_id) pairs never meet, even when a
// business id holds "/" or "%"; plain business ids keep the ids they had.
func TestIDDistinct(t *testing.T) {
	pairs := [][2]string{
		{"a/b", "c"}, {"a", "b/c"}, {"a%2Fb", "c"}, {"a%b", "c"}, {"a%25b", "c"}, {"a", "b%2Fc"},
		{"a/", "b"}, {"a", "/b"}, {"/", ""}, {"", "/"}, {"102290129340398", "ord-1/x"},
	}
	seen := map[string][2]string{}
	for _, p := range pairs {
		id := ledger.ID(p[0], p[1])
		if q, ok := seen[id]; ok {
			t.Errorf("ID(%q, %q) = ID(%q, %q) = %q", p[0], p[1], q[0], q[1], id)
		}
		seen[id] = p
	}
	if got := ledger.ID("102290129340398", "ord-1/x"); got != "102290129340398/ord-1/x" {
		t.Errorf("ID of a plain business = %q; want the old form business/event_id", got)
	}
	// Through Redis: the pair that used to share a key is claimed twice.
	l := ledger.New(redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()}), time.Hour)
	got, err := l.Claim(t.Context(), "o1", time.Minute, []string{ledger.ID("a/b", "c"), ledger.ID("a", "b/c")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]ledger.State{ledger.Claimed, ledger.Claimed}, states(got)); diff != "" {
		t.Errorf("Claim of two pairs (-want +got):\n%s", diff)
	}
	if err := l.MarkSent(t.Context(), []string{ledger.ID("a/b", "c")}); err != nil {
		t.Fatal(err)
	}
	got, err = l.Claim(t.Context(), "o2", time.Minute, []string{ledger.ID("a", "b/c")})
	if err != nil || got[0].State != ledger.Busy {
		t.Errorf("Claim(a, b/c) after a/b,c was sent = %v, %v; want still busy with o1, not sent", got, err)
	}
}
