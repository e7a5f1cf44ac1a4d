package ledger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/redistest"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/pkg/ledger"
)

// The claims of many requests go in the round trips of one: one pipeline of
// SET NX for all, one of GET for those taken. Each owner gets its own
// results, and an id two requests want goes to the first.
func TestClaimManyOneRoundTrip(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	l := ledger.New(rdb, 0)
	ctx := t.Context()
	if err := l.MarkSent(ctx, []string{"b3/sent"}); err != nil {
		t.Fatal(err)
	}
	h := &redistest.RoundTrips{}
	rdb.AddHook(h)
	got, err := l.ClaimMany(ctx, time.Minute, []ledger.ClaimRequest{
		{Owner: "o1", IDs: []string{"b1/a", "b1/b"}},
		{Owner: "o2", IDs: []string{"b2/a"}},
		{Owner: "o3", IDs: []string{"b1/a", "b3/sent"}},
		{Owner: "o4"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]ledger.State{{ledger.Claimed, ledger.Claimed}, {ledger.Claimed}, {ledger.Busy, ledger.Sent}, {}}
	for i := range want {
		if diff := cmp.Diff(want[i], states(got[i])); diff != "" {
			t.Errorf("request %d (-want +got):\n%s", i, diff)
		}
	}
	if n := h.N.Load(); n != 2 {
		t.Errorf("%d round trips for 4 requests; want 2 (SET NX, then GET of the taken)", n)
	}
	h.N.Store(0)
	errs, err := l.PostingMany(ctx, []string{"o1", "o2"})
	if err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("PostingMany = %v, %v; want both recorded", errs, err)
	}
	if n := h.N.Load(); n != 1 {
		t.Errorf("%d round trips for 2 post markers; want 1", n)
	}
	// A fenced owner is told so, the others are not.
	if err := rdb.Set(ctx, "ctm:ledger:post:{o5}", "f", 0).Err(); err != nil {
		t.Fatal(err)
	}
	errs, err = l.PostingMany(ctx, []string{"o1", "o5"})
	if err != nil || errs[0] != nil || !errors.Is(errs[1], ledger.ErrFenced) {
		t.Errorf("PostingMany(o1, fenced o5) = %v, %v; want nil, ErrFenced", errs, err)
	}
}
