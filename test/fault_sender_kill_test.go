package test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
)

// Scenario 1: the sender is SIGKILLed again and again during a steady
// stream and restarted each time. The kills land at random points (fetch,
// join, claim, post, mark, ack); one of them lands inside Meta's accept
// (events recorded, 200 not yet written), the window that can only end as
// in_doubt. Short leases (SEND_LEASE 2s, ACK_WAIT 3s) bring the work of a
// killed sender back fast.
func TestFaultSenderKilled(t *testing.T) {
	t.Parallel() // own ports, dirs and servers (newFaultRig)
	faultSenderKills(t, 2000, 5, 170)
}

// faultSenderKills streams n conversations at rate a second while killing
// and restarting the sender kills times, and accounts for all of them.
func faultSenderKills(t *testing.T, n, kills, rate int) {
	r := newFaultRig(t, faultOptions{SenderEnv: []string{
		"SEND_LEASE=2s", "HTTP_TIMEOUT=1s", "ACK_WAIT=3s", "BATCH_SIZE=50"}})
	mark := r.mark()
	s := &faultStream{N: n, Batch: 10, PerSecond: rate}
	done := make(chan error, 1)
	go func() { done <- s.run(r) }()

	insideAccept := 1 + r.rnd.IntN(max(1, kills-1)) // which kill hits Meta's accept
	for i := range kills {
		time.Sleep(time.Duration(200+r.rnd.IntN(2000)) * time.Millisecond) // a random kill point
		p := r.currentSender()
		if i == insideAccept {
			var armed atomic.Bool
			armed.Store(true)
			r.graph.OnAccept(func([]fakegraph.Event) {
				if armed.CompareAndSwap(true, false) {
					p.Kill()
				}
			})
			waitFor(t, 60*time.Second, "the sender to be killed inside Meta's accept", func() bool { return faultGone(p) })
			r.graph.OnAccept(nil)
		} else {
			p.Kill()
		}
		t.Logf("kill %d (inside accept: %v) after %d of %d published", i+1, i == insideAccept, s.published.Load(), n)
		r.startSender()
	}
	// And one graceful restart under load: the batch in flight finishes or
	// is handed back, and the process exits 0.
	if err := r.currentSender().Stop(30 * time.Second); err != nil {
		t.Errorf("SIGTERM under load: %v", err)
	}
	t.Logf("graceful stop after %d of %d published", s.published.Load(), n)
	r.startSender()
	if err := <-done; err != nil {
		t.Fatalf("traffic: %v", err)
	}
	tally := account(t, r, r.since(mark), faultAccountOpts{InDoubtOK: true, Within: 3 * time.Minute})
	// The request killed inside Meta's accept reached Meta: its events can
	// only be in doubt, and at Meta once.
	if tally.InDoubtAt == 0 {
		t.Errorf("no in_doubt dead letter of an event Meta has; the kill inside Meta's accept should leave some")
	}
}

// faultGone reports whether p has exited.
func faultGone(p *proc) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// The sender is down while a backlog builds up, then starts with Meta's
// largest batches (1,000 events a request) and a few invalid events in
// them: each rejected batch is halved until the bad events stand alone.
func TestFaultSenderBacklog(t *testing.T) {
	t.Parallel() // own ports, dirs and servers (newFaultRig)
	r := newFaultRig(t, faultOptions{SenderEnv: []string{"BATCH_SIZE=1000", "WORKERS=2"}})
	r.currentSender().Kill()
	mark := r.mark()
	fate := func(c faultConv) string {
		if c.n%1500 == 700 {
			r.graph.RejectEventID(c.EventID)
			return "rejected"
		}
		return ""
	}
	s := &faultStream{N: 6000, Batch: 50, Fate: fate}
	if err := s.run(r); err != nil {
		t.Fatal(err)
	}
	requests := r.graph.Requests()
	r.startSender()
	tally := account(t, r, r.since(mark), faultAccountOpts{})
	if tally.Dead["rejected"] != 4 {
		t.Errorf("%d rejected; want 4", tally.Dead["rejected"])
	}
	t.Logf("%d requests to Meta for %d events", r.graph.Requests()-requests, s.N)
}
