package sender

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

// Calls made while maxFlushes flushes run go together in the next one, and
// each gets the error of the flush it was in.
func TestFlusherCoalesces(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	f := &flusher[int]{run: func(_ context.Context, calls []*int) error {
		mu.Lock()
		sizes = append(sizes, len(calls))
		early := len(sizes) <= maxFlushes
		mu.Unlock()
		if early {
			<-release
			return nil
		}
		return errors.New("redis away")
	}}
	earlyErr := make(chan error, maxFlushes)
	for i := range maxFlushes {
		go func() { v := -1; earlyErr <- f.do(t.Context(), &v) }()
		waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(sizes) == i+1 })
	}
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() { v := i; errs[i] = f.do(t.Context(), &v) })
	}
	waitUntil(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.queue) == 10 })
	close(release)
	wg.Wait()
	for range maxFlushes {
		if err := <-earlyErr; err != nil {
			t.Errorf("early call: %v; want nil", err)
		}
	}
	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d: nil; want its flush's error", i)
		}
	}
	mu.Lock()
	if len(sizes) != maxFlushes+1 || sizes[maxFlushes] != 10 {
		t.Errorf("flushes of %v; want %d of 1, then one of 10", sizes, maxFlushes)
	}
	mu.Unlock()
	// The flushes end after answering their calls: none is left running.
	waitUntil(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.flushing == 0 })
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	poll.CheckFor(t, 5*time.Second, func() error { return poll.Until("the flushes to start", cond()) })
}
