package test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Only the operator can have an in-doubt event resent: a publisher's
// Ctm-Redrive-Force header is ignored (the copy is in doubt again, Meta gets
// nothing more), while `sender redrive -reason in_doubt -force` records the
// request in the ledger and the event goes out once more.
func TestRedriveForceOutOfBand(t *testing.T) {
	r := newFaultRig(t, faultOptions{})
	c := r.conv("instagram", nil)
	if code := r.post(faultWebhook([]faultConv{c}, time.Now())); code != 200 {
		t.Fatalf("webhook = %d", code)
	}
	r.graph.DropNext(1) // Meta takes the event; the answer is lost
	if err := r.publish(c.subject(), c.EventID, c.conversion(time.Now())); err != nil {
		t.Fatal(err)
	}
	inDoubt := func(n int) {
		t.Helper()
		waitFor(t, 60*time.Second, "in_doubt dead letters", func() bool {
			dead, err := r.deadLetters(t.Context())
			return err == nil && len(dead) == n && dead[n-1].Reason == "in_doubt"
		})
	}
	inDoubt(1)

	m := nats.NewMsg(c.subject())
	m.Data = c.conversion(time.Now())
	m.Header.Set(jetstream.MsgIDHeader, c.EventID+"-forged")
	m.Header.Set("Ctm-Redrive-Force", "in_doubt")
	if _, err := r.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	inDoubt(2)
	if n := r.graph.CountByEventID()[c.EventID]; n != 1 {
		t.Fatalf("%s at Meta %d times after a forged force header; want 1", c.EventID, n)
	}

	rd := start(t, "sender", "", []string{"NATS_URL=" + r.nats.ClientURL(), "REDIS_URL=" + r.redis.URL()},
		"redrive", "-reason", "in_doubt", "-force")
	<-rd.done
	if code := rd.cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(rd.Output(), "republished 2") {
		t.Fatalf("sender redrive -force: exit %d:\n%s", code, rd.Output())
	}
	waitFor(t, 60*time.Second, "the event resent after the forced redrive", func() bool {
		return r.graph.CountByEventID()[c.EventID] == 2
	})
	if ok, _, why := r.idle(t.Context()); !ok {
		waitFor(t, 30*time.Second, "the sender idle ("+why+")", func() bool { ok, _, _ := r.idle(t.Context()); return ok })
	}
	if n := r.graph.CountByEventID()[c.EventID]; n != 2 {
		t.Errorf("%s at Meta %d times; want 2 (the lost answer, and the one forced resend)", c.EventID, n)
	}
}
