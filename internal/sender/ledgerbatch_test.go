package sender

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Calls made while a flush runs go together in the next one, and each gets
// the error of the flush it was in.
func TestFlusherCoalesces(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	f := &flusher[int]{run: func(_ context.Context, calls []*int) error {
		mu.Lock()
		sizes = append(sizes, len(calls))
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			<-release
			return nil
		}
		return errors.New("redis away")
	}}
	firstErr := make(chan error, 1)
	go func() { v := 0; firstErr <- f.do(t.Context(), &v) }()
	waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(sizes) == 1 })
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() { v := i; errs[i] = f.do(t.Context(), &v) })
	}
	waitUntil(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.queue) == 10 })
	close(release)
	wg.Wait()
	if err := <-firstErr; err != nil {
		t.Errorf("first call: %v; want nil", err)
	}
	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d: nil; want its flush's error", i)
		}
	}
	if len(sizes) != 2 || sizes[1] != 10 {
		t.Errorf("flushes of %v; want [1 10]", sizes)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
