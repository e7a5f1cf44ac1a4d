package test

import (
	"testing"
	"time"
)

// Scenario 3: the NATS server is restarted twice mid-stream (same store, as
// an operator's restart). Publishers retry with the same Nats-Msg-Id (the
// stream drops the copies), the sender reconnects, acks lost in the restart
// come back as redeliveries the ledger knows as sent: nothing lost, nothing
// doubled, and (nothing having died between a claim and its outcome) no
// dead letter at all.
func TestFaultNATSRestart(t *testing.T) {
	t.Parallel() // own ports, dirs and servers (newFaultRig)
	r := newFaultRig(t, faultOptions{})
	mark := r.mark()
	s := &faultStream{N: 1500, Batch: 10, PerSecond: 150}
	done := make(chan error, 1)
	go func() { done <- s.run(r) }()
	for _, at := range []int64{400, 900} {
		waitFor(t, 60*time.Second, "traffic to flow", func() bool { return s.published.Load() >= at })
		r.nats.Restart()
		t.Logf("NATS restarted after %d conversions", s.published.Load())
	}
	if err := <-done; err != nil {
		t.Fatalf("traffic: %v", err)
	}
	if p := r.currentSender(); faultGone(p) {
		t.Fatalf("the sender exited with the NATS restart:\n%s", p.Output())
	}
	account(t, r, r.since(mark), faultAccountOpts{})
}
