package test

import (
	"testing"
	"time"
)

// Scenario 6: conversions that arrive before their webhook. The order
// system publishes first; only once the sender has looked for every
// context, found none and handed the conversions back to wait, do the late
// webhooks arrive (clicked earlier, delivered late, as after Meta's
// retries). Those conversions are sent once. A second group never gets a
// webhook: after CONTEXT_WAIT (short here) each is dead letter unattributed.
func TestFaultConversionBeforeWebhook(t *testing.T) {
	t.Parallel() // own ports, dirs and servers (newFaultRig)
	r := newFaultRig(t, faultOptions{SenderEnv: []string{
		"CONTEXT_WAIT=15s", "CONTEXT_RETRY_MIN=250ms", "CONTEXT_RETRY_MAX=1s"}})
	mark := r.mark()
	var (
		late  [][]faultConv // one webhook delivery each
		never []faultConv
	)
	for i := range 30 {
		late = append(late, r.convs(8, faultChannels[i%len(faultChannels)], nil))
	}
	for i := range 9 {
		never = append(never, r.convs(10, faultChannels[i%len(faultChannels)], nil)...)
	}
	publish := func(c faultConv, reason string) {
		r.expect(faultWant{EventID: c.EventID, MsgIDs: []string{c.EventID}, Reason: reason})
		if err := r.publish(c.subject(), c.EventID, c.conversion(time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	total := len(never)
	for i, cs := range late {
		for _, c := range cs {
			publish(c, "")
			total++
		}
		if i < len(never)/10 { // interleave the groups
			for _, c := range never[i*10 : i*10+10] {
				publish(c, "unattributed")
			}
		}
	}

	// Every conversion has been looked up and handed back at least once.
	waitFor(t, 60*time.Second, "the sender to find no context for each conversion", func() bool {
		c, err := r.js.Consumer(t.Context(), "CONVERSIONS", "sender")
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumRedelivered >= total
	})
	if n := len(r.graph.Events()); n != 0 {
		t.Fatalf("%d events at Meta before any webhook; want none", n)
	}
	clicked := time.Now().Add(-30 * time.Second)
	for _, cs := range late {
		if code := r.post(faultWebhook(cs, clicked)); code != 200 {
			t.Fatalf("late webhook = %d; want 200", code)
		}
	}
	tally := account(t, r, r.since(mark), faultAccountOpts{})
	if tally.Sent != total-len(never) || tally.Dead["unattributed"] != len(never) {
		t.Errorf("tally %+v; want %d sent and %d unattributed", tally, total-len(never), len(never))
	}
}
