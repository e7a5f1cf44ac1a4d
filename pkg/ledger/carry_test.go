package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/redistest"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/pkg/ledger"
)

// Carried commands ride in the ledger's own round trip, and a failing one
// does not fail the ledger's call.
func TestCarryRidesTheSameRoundTrip(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	h := &redistest.RoundTrips{}
	rdb.AddHook(h) // before the connection is dialled, which counts its handshake
	if err := rdb.Set(t.Context(), "a-string", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	l := ledger.New(rdb, 0)
	if err := l.MarkSent(t.Context(), []string{"b/warm"}); err != nil { // dial the connections first
		t.Fatal(err)
	}
	n := 0
	ctx := ledger.WithCarry(t.Context(), func(ctx context.Context, p redis.Pipeliner) {
		n++
		p.Set(ctx, "carried", n, time.Minute)
	})
	h.N.Store(0)
	if err := l.MarkSent(ctx, []string{"b/e1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ClaimMany(ctx, time.Minute, []ledger.ClaimRequest{{Owner: "o", IDs: []string{"b/e2"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PostingMany(ctx, []string{"o"}); err != nil {
		t.Fatal(err)
	}
	if got := h.N.Load(); got != 3 {
		t.Errorf("%d round trips for mark, claim and posting with carried writes; want 3", got)
	}
	if v, _ := rdb.Get(t.Context(), "carried").Result(); v != "3" || n != 3 {
		t.Errorf("carried = %q after %d calls; want 3 written", v, n)
	}
	// A carried command that fails (WRONGTYPE) leaves the ledger's call alone.
	bad := ledger.WithCarry(t.Context(), func(ctx context.Context, p redis.Pipeliner) { p.HIncrBy(ctx, "a-string", "f", 1) })
	if err := l.MarkSent(bad, []string{"b/e3"}); err != nil {
		t.Errorf("MarkSent with a failing carried command = %v; want nil", err)
	}
	if _, err := l.PostingMany(bad, []string{"o"}); err != nil {
		t.Errorf("PostingMany with a failing carried command = %v; want nil", err)
	}
}
