package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// fakeStore records the batches it is given. While gate is open (not nil)
// every call blocks until it is closed; calls counts arrivals.
type fakeStore struct {
	mu      sync.Mutex
	batches [][]attribution.Touch
	gate    chan struct{}
	calls   chan struct{}
	fail    error
}

func (f *fakeStore) Record(_ context.Context, ts []attribution.Touch) error {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if f.calls != nil {
		f.calls <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range ts {
		if t.UserID == "bad" {
			return fmt.Errorf("%w: test", attribution.ErrInvalidTouch)
		}
	}
	if f.fail != nil {
		return f.fail
	}
	f.batches = append(f.batches, append([]attribution.Touch(nil), ts...))
	return nil
}

func (f *fakeStore) stored() (touches, batches int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.batches {
		touches += len(b)
	}
	return touches, len(f.batches)
}

func touch(user string) []attribution.Touch {
	return []attribution.Touch{{Key: attribution.Key{Channel: "messenger", BusinessID: "1", UserID: user}, Time: time.Unix(1, 0)}}
}

func newTestCoalescer(next recorder) *coalescer {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x"})
	return newCoalescer(next, time.Second, h, h)
}

// While every flusher is busy, later calls queue and then share one write.
func TestCoalescerBatchesWhileBusy(t *testing.T) {
	gate := make(chan struct{})
	f := &fakeStore{gate: gate, calls: make(chan struct{}, 100)}
	c := newTestCoalescer(f)
	const queued = 20
	var wg sync.WaitGroup
	errs := make(chan error, maxFlushers+queued)
	call := func(user string) {
		wg.Go(func() { errs <- c.Record(t.Context(), touch(user)) })
	}
	for i := range maxFlushers {
		call(fmt.Sprint("busy", i))
	}
	for range maxFlushers {
		<-f.calls // every flusher is inside the store
	}
	for i := range queued {
		call(fmt.Sprint("queued", i))
	}
	waitFor(t, 5*time.Second, "the calls to queue", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.pending) == queued
	})
	f.mu.Lock()
	f.gate = nil // later writes do not block
	f.mu.Unlock()
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Record = %v; want nil", err)
		}
	}
	touches, batches := f.stored()
	if touches != maxFlushers+queued {
		t.Errorf("stored %d touches; want %d", touches, maxFlushers+queued)
	}
	// Each busy flusher hands one turn on; those turns share the queue.
	if batches > 2*maxFlushers {
		t.Errorf("%d writes for %d calls; want at most %d", batches, maxFlushers+queued, 2*maxFlushers)
	}
	if c.flushing != 0 || len(c.pending) != 0 {
		t.Errorf("after the burst: flushing %d, pending %d; want 0, 0", c.flushing, len(c.pending))
	}
}

// One invalid delivery in a batch fails only itself; a store error fails
// every call of the batch.
func TestCoalescerErrors(t *testing.T) {
	f := &fakeStore{}
	c := newTestCoalescer(f)
	reqs := []*writeReq{
		{ctx: t.Context(), touches: touch("a")},
		{ctx: t.Context(), touches: touch("bad")},
		{ctx: t.Context(), touches: touch("c")},
	}
	errs := c.write(reqs, 3)
	if errs[0] != nil || !errors.Is(errs[1], attribution.ErrInvalidTouch) || errs[2] != nil {
		t.Errorf("write with one invalid call = %v; want [nil ErrInvalidTouch nil]", errs)
	}
	if touches, _ := f.stored(); touches != 2 {
		t.Errorf("stored %d touches; want the 2 valid ones", touches)
	}

	down := errors.New("connection refused")
	f.fail = down
	for i, err := range c.write(reqs[:1], 1) {
		if !errors.Is(err, down) {
			t.Errorf("write with the store down: call %d = %v; want the store error", i, err)
		}
	}
	f.fail = nil

	// A caller that has gone is answered with its context's error, and its
	// touches are not written.
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	before, _ := f.stored()
	errs = c.write([]*writeReq{{ctx: gone, touches: touch("x")}, {ctx: t.Context(), touches: touch("y")}}, 2)
	after, _ := f.stored()
	if !errors.Is(errs[0], context.Canceled) || errs[1] != nil || after-before != 1 {
		t.Errorf("write with a cancelled caller = %v, %d stored; want [Canceled nil], 1", errs, after-before)
	}
}

// Under concurrent load every call returns and nothing is left queued.
func TestCoalescerConcurrent(t *testing.T) {
	f := &fakeStore{}
	c := newTestCoalescer(f)
	var wg sync.WaitGroup
	const n = 500
	for i := range n {
		wg.Go(func() {
			if err := c.Record(t.Context(), touch(fmt.Sprint(i))); err != nil {
				t.Errorf("Record: %v", err)
			}
		})
	}
	wg.Wait()
	if touches, _ := f.stored(); touches != n {
		t.Errorf("stored %d touches; want %d", touches, n)
	}
	if c.flushing != 0 || len(c.pending) != 0 {
		t.Errorf("flushing %d, pending %d; want 0, 0", c.flushing, len(c.pending))
	}
}
