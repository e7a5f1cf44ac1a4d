package sender_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// A conversion that arrives before its webhook waits for the context and is
// sent once it is there.
func TestLateContextWaitsThenSends(t *testing.T) {
	e := newEnv(t, nil)
	e.publish("whatsapp", conv("late-1", "whatsapp", "w1", "wa-1"), "late-1")
	e.waitFor(10*time.Second, "the conversion to wait for its context", func() bool {
		return e.metric("sender_context_waits_total", nil) >= 2
	})
	if n := len(e.fake.Events()); n != 0 {
		t.Fatalf("%d events sent before the context arrived", n)
	}
	e.touch(attribution.WhatsApp, "w1", "wa-1")
	e.settled(20 * time.Second)
	e.sentOnce("late-1")
	// It waited more than once, and is one conversion that waited.
	if got := e.metric("sender_conversions_total", map[string]string{"outcome": "waiting_context"}); got != 1 {
		t.Errorf("conversions waiting_context = %v; want 1 (the looks count in sender_context_waits_total)", got)
	}
	if n := len(e.dlq()); n != 0 {
		t.Errorf("%d dead letters; want none", n)
	}
}

// Past CONTEXT_WAIT a conversion is unattributed; redrive puts it back and,
// with the context there by then, it is sent.
func TestUnattributedThenRedrive(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) { c.ContextWait = 300 * time.Millisecond })
	// A WhatsApp context without ctwa_clid (an ad in WhatsApp Status) ends
	// no_click_id at once, not after CONTEXT_WAIT (TestNoClickIDAtOnce).
	if err := e.store.Record(t.Context(), []attribution.Touch{{
		Key: attribution.Key{Channel: attribution.WhatsApp, BusinessID: "w1", UserID: "wa-2"}, AdID: "1", Time: time.Now(),
	}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		id := "un-" + strconv.Itoa(i)
		e.publish("messenger", conv(id, "messenger", "p1", "psid-"+strconv.Itoa(i)), id)
	}
	e.publish("whatsapp", []byte(`{"event_id":"un-wa","event_name":"LeadSubmitted","channel":"whatsapp","business_id":"w1","user_id":"wa-2"}`), "un-wa")
	letters := e.waitDLQ(20*time.Second, 4)
	for _, l := range letters {
		want := sender.ReasonUnattributed
		if l.EventID == "un-wa" {
			want = sender.ReasonNoClickID
		}
		if l.Reason != want {
			t.Errorf("%s: reason %q; want %s", l.EventID, l.Reason, want)
		}
	}
	e.settled(10 * time.Second)
	e.sentOnce()

	// A dry run changes nothing.
	res, err := sender.Redrive(t.Context(), e.js, sender.RedriveOptions{Reasons: []string{sender.ReasonUnattributed}, DryRun: true})
	if err != nil || res.Matched != 3 || res.Republished != 0 || len(e.dlq()) != 4 {
		t.Fatalf("dry-run Redrive = %+v, %v; want 3 matched, nothing changed", res, err)
	}
	// -limit and a time window select fewer.
	res, err = sender.Redrive(t.Context(), e.js, sender.RedriveOptions{Reasons: []string{sender.ReasonUnattributed},
		DryRun: true, Limit: 2})
	if err != nil || res.Matched != 2 {
		t.Fatalf("Redrive(limit 2) = %+v, %v; want 2 matched", res, err)
	}
	res, err = sender.Redrive(t.Context(), e.js, sender.RedriveOptions{Reasons: []string{sender.ReasonUnattributed},
		DryRun: true, From: time.Now().Add(time.Hour)})
	if err != nil || res.Matched != 0 {
		t.Fatalf("Redrive(from the future) = %+v, %v; want none", res, err)
	}

	for i := range 3 {
		e.touch(attribution.Messenger, "p1", "psid-"+strconv.Itoa(i))
	}
	e.touch(attribution.WhatsApp, "w1", "wa-2")
	res, err = sender.Redrive(t.Context(), e.js, sender.RedriveOptions{Reasons: []string{sender.ReasonUnattributed, sender.ReasonNoClickID, sender.ReasonRejected}})
	if err != nil || res.Republished != 4 || res.Deleted != 4 || res.ByReason[sender.ReasonUnattributed] != 3 || res.ByReason[sender.ReasonNoClickID] != 1 {
		t.Fatalf("Redrive = %+v, %v; want 4 republished and deleted", res, err)
	}
	e.settled(20 * time.Second)
	e.sentOnce("un-0", "un-1", "un-2", "un-wa")
	if n := len(e.dlq()); n != 0 {
		t.Errorf("%d dead letters after redrive; want none", n)
	}
	// The event without event_time keeps its first publish time.
	for _, ev := range e.fake.Events() {
		if ev.EventID == "un-wa" && time.Since(time.Unix(ev.EventTime, 0)) > time.Minute {
			t.Errorf("un-wa event_time = %v", time.Unix(ev.EventTime, 0))
		}
	}
}

// By default (REQUIRE_REFERRAL=messenger) a Messenger conversion waits for
// its ad referral and ends unattributed without one, while an Instagram one,
// for which Meta documents no referral, goes out with the IGSID alone;
// WhatsApp always needs its click.
func TestReferralRequiredPerChannel(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) { c.ContextWait = 300 * time.Millisecond })
	e.publish("messenger", conv("pc-m", "messenger", "p1", "psid-1"), "")
	e.publish("instagram", conv("pc-i", "instagram", "ig1", "igsid-1"), "")
	e.publish("whatsapp", conv("pc-w", "whatsapp", "w1", "wa-1"), "")
	letters := e.waitDLQ(20*time.Second, 2)
	e.settled(20 * time.Second)
	e.sentOnce("pc-i")
	got := map[string]string{}
	for _, l := range letters {
		got[l.EventID] = l.Reason + ": " + l.Error
	}
	if len(letters) != 2 || !strings.HasPrefix(got["pc-m"], "unattributed: no ad referral") ||
		!strings.HasPrefix(got["pc-w"], "unattributed: no ad-click context") {
		t.Errorf("dead letters = %v; want pc-m and pc-w unattributed", got)
	}
}

// With REQUIRE_REFERRAL=none, Messenger and Instagram conversions go out with
// the scoped ids alone; WhatsApp still needs its click.
func TestReferralNotRequired(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) {
		c.RequireReferral = nil
		c.ContextWait = 300 * time.Millisecond
	})
	e.publish("messenger", conv("nr-m", "messenger", "p1", "psid-1"), "")
	e.publish("instagram", conv("nr-i", "instagram", "ig1", "igsid-1"), "")
	e.publish("whatsapp", conv("nr-w", "whatsapp", "w1", "wa-1"), "")
	letters := e.waitDLQ(20*time.Second, 1)
	e.settled(20 * time.Second)
	e.sentOnce("nr-m", "nr-i")
	if len(letters) != 1 || letters[0].EventID != "nr-w" || letters[0].Reason != sender.ReasonUnattributed {
		t.Errorf("dead letters = %+v; want nr-w unattributed", letters)
	}
}

// A WhatsApp conversation whose referral came without ctwa_clid (an ad in
// WhatsApp Status) cannot be reported: its conversion is dead letter
// no_click_id on its first delivery, without waiting for CONTEXT_WAIT, and
// counted and visible in the trail. A later referral with a click id wins
// over the one without, and a redrive then sends it.
func TestNoClickIDAtOnce(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) { c.ContextWait = time.Hour })
	status := attribution.Touch{Key: attribution.Key{Channel: attribution.WhatsApp, BusinessID: "w1", UserID: "wa-status"},
		AdID: "120212345678907777", SourceType: "ad", Time: time.Now()}
	if err := e.store.Record(t.Context(), []attribution.Touch{status}); err != nil {
		t.Fatal(err)
	}
	e.publish("whatsapp", conv("nc-1", "whatsapp", "w1", "wa-status"), "nc-1")
	letters := e.waitDLQ(20*time.Second, 1)
	e.settled(10 * time.Second)
	if len(letters) != 1 || letters[0].Reason != sender.ReasonNoClickID || letters[0].Subject != "dlq.no_click_id" ||
		!strings.Contains(letters[0].Error, "without ctwa_clid") {
		t.Fatalf("dead letters = %+v; want nc-1 no_click_id", letters)
	}
	if got := e.metric("sender_context_waits_total", nil); got != 0 {
		t.Errorf("sender_context_waits_total = %v; want 0: no wait can bring a click id", got)
	}
	if got := e.metric("sender_conversions_total", map[string]string{"outcome": sender.ReasonNoClickID}); got != 1 {
		t.Errorf("sender_conversions_total{outcome=no_click_id} = %v; want 1", got)
	}
	if r := e.waitTrail(e.adminAPI(), "w1", "nc-1", trail.DeadLetter); r.DeadLetter == nil || r.DeadLetter.Reason != sender.ReasonNoClickID {
		t.Errorf("trail = %+v; want dead_letter no_click_id", r)
	}

	later := status
	later.ClickID, later.Time = "ARAstatusThenClick", time.Now().Add(time.Second)
	if err := e.store.Record(t.Context(), []attribution.Touch{later}); err != nil {
		t.Fatal(err)
	}
	if _, err := sender.Redrive(t.Context(), e.js, sender.RedriveOptions{Reasons: []string{sender.ReasonNoClickID}}); err != nil {
		t.Fatal(err)
	}
	e.waitSent(20*time.Second, "nc-1")
	for _, ev := range e.fake.Events() {
		if ev.EventID == "nc-1" && !strings.Contains(string(ev.Raw), `"ctwa_clid":"ARAstatusThenClick"`) {
			t.Errorf("nc-1 sent %s; want the later click id", ev.Raw)
		}
	}
}
