package test

import (
	"testing"
)

// ingest is SIGKILLed three times mid-stream and restarted on the same
// address. Deliveries cut off get no answer, so they are redelivered as
// Meta does; any delivery that got 200 must have been written (the promise
// behind "200 only after the context is durably written", also with the
// group commit of concurrent writes). A 200 for a context that was not
// written would leave its conversion unattributed, which account reports.
func TestFaultIngestKilled(t *testing.T) {
	t.Parallel() // own ports, dirs and servers (newFaultRig)
	r := newFaultRig(t, faultOptions{})
	mark := r.mark()
	// Four concurrent streams keep several deliveries (and group commits)
	// in flight when the kill comes.
	s := &faultStream{N: 600, Batch: 2, PerSecond: 60}
	others := make([]*faultStream, 3)
	errs := make(chan error, len(others))
	for i := range others {
		others[i] = &faultStream{N: 600, Batch: 2, PerSecond: 60}
		go func() { errs <- others[i].run(r) }()
	}
	var steps []faultStep
	for i := range 3 {
		steps = append(steps, faultStep{At: int64(100 + 150*i + r.rnd.IntN(100)), Do: func() {
			r.ingP.Kill()
			t.Logf("ingest killed after %d conversions", s.published.Load())
			r.startIngest()
		}})
	}
	r.during(t, s, steps...)
	st := s.statuses()
	for _, o := range others {
		if err := <-errs; err != nil {
			t.Fatalf("traffic: %v", err)
		}
		for code, n := range o.statuses() {
			st[code] += n
		}
	}
	for code, n := range st {
		if code != 200 && code != 0 {
			t.Errorf("%d deliveries answered %d; want 200, or no answer from a killed ingest", n, code)
		}
	}
	t.Logf("first answers to %d deliveries: %v (0: no answer)", 4*s.N/s.Batch, st)
	account(t, r, r.since(mark), faultAccountOpts{})
}
