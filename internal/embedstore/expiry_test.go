package embedstore

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/ledger"
)

func startRealRedis(t *testing.T) *redis.Client {
	t.Helper()
	return redistest.Start(t).Client(t)
}

// TestContextsExpireAfterContextTTL: contexts written by the attribution
// store's script live CONTEXT_TTL on the store's clock. Reads past the
// deadline miss before any sweep (lazy expiry); the sweep then frees them;
// a restart does not bring them back.
func TestContextsExpireAfterContextTTL(t *testing.T) {
	const contextTTL = 7 * 24 * time.Hour
	dir := t.TempDir()
	clock := newFakeClock()
	// A sweep step every hour of real time: only Sweep() sweeps here.
	s, c := openTest(t, Options{Dir: dir, Now: clock.Now, SweepEvery: time.Hour})
	ctx := t.Context()
	store := attribution.NewStore(c, contextTTL)
	var keys []attribution.Key
	var touches []attribution.Touch
	for i := range 50 {
		k := attribution.Key{Channel: attribution.Messenger, BusinessID: "109876543210987", UserID: fmt.Sprint(6789012345678900 + i)}
		keys = append(keys, k)
		touches = append(touches, attribution.Touch{Key: k, AdID: "120210000000000111", Time: time.Unix(1763900000, 0)})
	}
	must(t, store.Record(ctx, touches))
	clock.Add(contextTTL - time.Second)
	if _, err := store.Get(ctx, keys[0]); err != nil {
		t.Fatalf("context a second before CONTEXT_TTL: %v; want it there", err)
	}
	// A newer click renews one context's TTL (PX inside the script).
	must(t, store.Record(ctx, []attribution.Touch{{Key: keys[1], AdID: "120210000000000222", Time: time.Unix(1763900100, 0)}}))
	clock.Add(2 * time.Second)
	if _, err := store.Get(ctx, keys[0]); !errors.Is(err, attribution.ErrNotFound) {
		t.Errorf("context past CONTEXT_TTL: %v; want ErrNotFound", err)
	}
	if got, err := store.Get(ctx, keys[1]); err != nil || got.AdID != "120210000000000222" {
		t.Errorf("renewed context = %+v, %v; want the newer click", got, err)
	}
	if n := s.Sweep(); n != 48 {
		t.Errorf("Sweep removed %d keys; want 48 (49 expired, one read lazily already)", n)
	}
	if st := s.Stats(); st.Keys != 1 || st.Expired != 49 {
		t.Errorf("Stats after the sweep = %+v; want 1 key, 49 expired", st)
	}
	c.Close()
	must(t, s.Close())
	_, c2 := openTest(t, Options{Dir: dir, Now: clock.Now})
	if n := c2.DBSize(t.Context()).Val(); n != 1 {
		t.Errorf("keys after restart = %d; want 1", n)
	}
}

// TestStoreKeysOfTheSenderExpire: ledger markers after the sent TTL, pause
// and unpark-lease keys (SET PX, SET NX PX) after theirs, with no sweep.
func TestStoreKeysOfTheSenderExpire(t *testing.T) {
	clock := newFakeClock()
	_, c := openTest(t, Options{Dir: t.TempDir(), Now: clock.Now, SweepEvery: time.Hour})
	ctx := t.Context()
	const sentTTL = 8 * 24 * time.Hour
	l := ledger.New(c, sentTTL)
	res, err := l.Claim(ctx, "owner-1", 2*time.Minute, []string{"ord-1"})
	if err != nil || res[0].State != ledger.Claimed {
		t.Fatalf("Claim = %v, %v", res, err)
	}
	must(t, l.MarkSent(ctx, []string{"ord-1"}))
	must(t, c.Set(ctx, "ctm:biz:{1}:paused", "1", 30*time.Second).Err())
	if !c.SetNX(ctx, "ctm:biz:{1}:unpark", "me", time.Minute).Val() {
		t.Fatal("SETNX unpark lease failed")
	}
	clock.Add(31 * time.Second)
	if c.Exists(ctx, "ctm:biz:{1}:paused").Val() != 0 {
		t.Error("pause key outlived its TTL")
	}
	if c.SetNX(ctx, "ctm:biz:{1}:unpark", "other", time.Minute).Val() {
		t.Error("another took the unpark lease before it ran out")
	}
	clock.Add(30 * time.Second)
	if !c.SetNX(ctx, "ctm:biz:{1}:unpark", "other", time.Minute).Val() {
		t.Error("the unpark lease did not run out after its TTL")
	}
	if res, _ := l.Claim(ctx, "owner-2", time.Minute, []string{"ord-1"}); res[0].State != ledger.Sent {
		t.Errorf("Claim of a sent id = %v; want sent", res[0].State)
	}
	clock.Add(sentTTL)
	if res, _ := l.Claim(ctx, "owner-3", time.Minute, []string{"ord-1"}); res[0].State != ledger.Claimed {
		t.Errorf("Claim after the sent marker's TTL = %v; want claimed", res[0].State)
	}
}

// TestLedgerLeaseRunsOut: a claim is busy for SEND_LEASE and then, its
// owner never having posted, free again (the ledger's fence script runs on
// the store). The ledger measures leases on the wall clock, so this waits
// out a short one.
func TestLedgerLeaseRunsOut(t *testing.T) {
	_, c := openTest(t, Options{Dir: t.TempDir()})
	ctx := t.Context()
	l := ledger.New(c, time.Hour)
	const sendLease = 50 * time.Millisecond
	if res, err := l.Claim(ctx, "a", sendLease, []string{"ord-1"}); err != nil || res[0].State != ledger.Claimed {
		t.Fatalf("Claim a = %v, %v", res, err)
	}
	res, err := l.Claim(ctx, "b", sendLease, []string{"ord-1"})
	if err != nil || res[0].State != ledger.Busy {
		t.Fatalf("Claim b during a's lease = %v, %v; want busy", res, err)
	}
	time.Sleep(res[0].Wait + 5*time.Millisecond) // the lease is on the wall clock
	if res, err := l.Claim(ctx, "b", sendLease, []string{"ord-1"}); err != nil || res[0].State != ledger.Claimed {
		t.Errorf("Claim b after a's lease = %v, %v; want claimed (a never posted)", res, err)
	}
	if err := l.Posting(ctx, "a"); err == nil {
		t.Error("a could still post after b took over")
	}
	// An owner that began to post leaves its ids in doubt.
	if res, _ := l.Claim(ctx, "c", sendLease, []string{"ord-2"}); res[0].State != ledger.Claimed {
		t.Fatal("Claim c failed")
	}
	must(t, l.Posting(ctx, "c"))
	time.Sleep(sendLease + 5*time.Millisecond)
	if res, _ := l.Claim(ctx, "d", sendLease, []string{"ord-2"}); res[0].State != ledger.InDoubt {
		t.Errorf("Claim after a posting owner's lease = %v; want in doubt", res[0].State)
	}
	must(t, l.Release(ctx, "b", []string{"ord-1"}))
	// Only an operator's redrive -force allows a take-over (out of band).
	must(t, l.AllowTakeOver(ctx, []string{"ord-2"}, time.Minute))
	if res, _ := l.TakeOver(ctx, "e", sendLease, []string{"ord-2"}); res[0].State != ledger.Claimed {
		t.Errorf("TakeOver = %v; want claimed", res[0].State)
	}
}
