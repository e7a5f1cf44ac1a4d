package ingest

import (
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// The webhook and context counters ride on the context write: no round
// trip of their own (after the one question, once, whether the store
// keeps hashes).
func TestStatsRideOnTheContextWrite(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	h := &redistest.RoundTrips{}
	rdb.AddHook(h)
	store := attribution.NewStore(rdb, 0)
	store.SetRecordHook((&statsHook{rdb: rdb}).record)
	touch := func(biz, user string) attribution.Touch {
		return attribution.Touch{Key: attribution.Key{Channel: attribution.Messenger, BusinessID: biz, UserID: user},
			AdID: "1", SourceType: "ad", Time: time.Now()}
	}
	ctx := t.Context()
	if err := store.Record(withDeliveries(ctx, 1), []attribution.Touch{touch("p1", "u0")}); err != nil {
		t.Fatal(err)
	}
	h.N.Store(0)
	if err := store.Record(withDeliveries(ctx, 3), []attribution.Touch{touch("p1", "u1"), touch("p1", "u2"), touch("p2", "u3")}); err != nil {
		t.Fatal(err)
	}
	if n := h.N.Load(); n != 1 {
		t.Errorf("%d round trips for a write with its counters; want 1", n)
	}
	now := time.Now()
	m := rdb.HGetAll(ctx, trail.MinuteKey(now)).Val()
	if m[trail.FieldWebhooks] != "4" || m[trail.FieldContexts] != "4" {
		t.Errorf("minute counters = %v; want 4 webhooks and 4 contexts", m)
	}
	if v := rdb.HGet(ctx, trail.BusinessKey("p1", now), trail.FieldContexts).Val(); v != "3" {
		t.Errorf("p1 contexts = %q; want 3", v)
	}
	if ttl := rdb.TTL(ctx, trail.MinuteKey(now)).Val(); ttl <= 0 {
		t.Errorf("minute key ttl = %v; want one", ttl)
	}
}
