package embedstore

import (
	"errors"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// TestAttributionPoliciesAndIDChanges: the attribution store's scripts (first
// touch, a click id beating none, id-change aliases with the context's
// remaining TTL) run on the embedded store's Lua as on redis-server.
func TestAttributionPoliciesAndIDChanges(t *testing.T) {
	const ttl = 24 * time.Hour
	clock := newFakeClock()
	_, c := openTest(t, Options{Dir: t.TempDir(), Now: clock.Now, SweepEvery: time.Hour})
	ctx := t.Context()
	store := attribution.NewStore(c, ttl)
	at := time.Unix(1763900000, 0)
	click := func(user, clid string, d time.Duration, first bool) attribution.Touch {
		return attribution.Touch{Key: attribution.Key{Channel: attribution.WhatsApp, BusinessID: "102290129340398", UserID: user},
			ClickID: clid, AdID: "1", SourceType: "ad", Time: at.Add(d), FirstTouch: first}
	}
	key := func(user string) attribution.Key {
		return attribution.Key{Channel: attribution.WhatsApp, BusinessID: "102290129340398", UserID: user}
	}
	must(t, store.Record(ctx, []attribution.Touch{click("US.first", "ARAone", 0, true)}))
	must(t, store.Record(ctx, []attribution.Touch{click("US.first", "ARAtwo", time.Hour, true)}))
	must(t, store.Record(ctx, []attribution.Touch{click("US.none", "", 0, false)}))
	must(t, store.Record(ctx, []attribution.Touch{click("US.none", "ARAclick", -time.Hour, false)}))
	for user, want := range map[string]string{"US.first": "ARAone", "US.none": "ARAclick"} {
		if got, err := store.Get(ctx, key(user)); err != nil || got.ClickID != want {
			t.Errorf("Get(%s) = %q, %v; want %q", user, got.ClickID, err, want)
		}
	}
	clock.Add(time.Hour)
	out, err := store.ChangeID(ctx, attribution.IDChange{Channel: attribution.WhatsApp, BusinessID: "102290129340398",
		Old: []string{"US.first"}, New: []string{"US.renamed"}})
	if err != nil || out != attribution.ChangeLinked {
		t.Fatalf("ChangeID = %v, %v; want linked", out, err)
	}
	if got, err := store.Get(ctx, key("US.renamed")); err != nil || got.ClickID != "ARAone" {
		t.Errorf("Get(new id) = %q, %v; want the original click", got.ClickID, err)
	}
	clock.Add(ttl - time.Hour + time.Second)
	if _, err := store.Get(ctx, key("US.renamed")); !errors.Is(err, attribution.ErrNotFound) {
		t.Errorf("Get(new id) past the context's TTL = %v; want ErrNotFound", err)
	}
}
