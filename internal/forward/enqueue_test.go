package forward

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Enqueue with NATS gone returns ErrEnqueue within its context, so ingest
// answers 503 instead of hanging.
func TestEnqueueNATSDown(t *testing.T) {
	srv, js := runJetStream(t)
	e := newEnqueuer(t, js, testConfig(time.Minute, "http://127.0.0.1:1/"))
	b := testBody(t, 0)
	if err := e.Enqueue(t.Context(), b, metaHeader(b)); err != nil {
		t.Fatalf("Enqueue with NATS up: %v", err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	b = testBody(t, 1)
	if err := e.Enqueue(ctx, b, metaHeader(b)); !errors.Is(err, ErrEnqueue) {
		t.Errorf("Enqueue with NATS down = %v; want ErrEnqueue", err)
	}
}

// Before the first Enqueue reaches NATS, nothing is set up: the error is
// ErrEnqueue too (ingest starts while NATS is away).
func TestEnqueueNATSDownAtStart(t *testing.T) {
	srv, js := runJetStream(t)
	srv.Shutdown()
	srv.WaitForShutdown()
	e := newEnqueuer(t, js, testConfig(time.Minute, "http://127.0.0.1:1/"))
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	b := testBody(t, 0)
	if err := e.Enqueue(ctx, b, metaHeader(b)); !errors.Is(err, ErrEnqueue) {
		t.Errorf("Enqueue = %v; want ErrEnqueue", err)
	}
}

// The same bytes with the same signature are stored once; another body
// is stored.
func TestEnqueueDeduplicates(t *testing.T) {
	_, js := runJetStream(t)
	e := newEnqueuer(t, js, testConfig(time.Minute, "http://127.0.0.1:1/"))
	a, b := testBody(t, 0), testBody(t, 1)
	for _, body := range [][]byte{a, a, b, a} {
		if err := e.Enqueue(t.Context(), body, metaHeader(body)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(t.Context(), StreamForward)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("FORWARD holds %d messages; want 2", info.State.Msgs)
	}
}

func TestEnqueueUnsigned(t *testing.T) {
	_, js := runJetStream(t)
	e := newEnqueuer(t, js, testConfig(time.Minute, "http://127.0.0.1:1/"))
	if err := e.Enqueue(t.Context(), []byte("{}"), nil); !errors.Is(err, ErrUnsigned) {
		t.Errorf("Enqueue without signature = %v; want ErrUnsigned", err)
	}
}

// A body that could be stored but not dead-lettered is refused up front.
func TestEnqueueTooLarge(t *testing.T) {
	_, js := runJetStream(t)
	e := newEnqueuer(t, js, testConfig(time.Minute, "http://127.0.0.1:1/"))
	body := make([]byte, js.Conn().MaxPayload()-1024)
	if err := e.Enqueue(t.Context(), body, metaHeader(body)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Enqueue(max_payload-1KiB) = %v; want ErrTooLarge", err)
	}
}

// FORWARD deleted under a running ingest (a NATS that lost its store) is
// set up again: one Enqueue may fail (Meta retries), the next succeeds, and
// the destination's consumer exists again.
func TestEnqueueSetsUpAgain(t *testing.T) {
	_, js := runJetStream(t)
	cfg := testConfig(time.Minute, "http://127.0.0.1:1/")
	e := newEnqueuer(t, js, cfg)
	b := testBody(t, 0)
	if err := e.Enqueue(t.Context(), b, metaHeader(b)); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(t.Context(), StreamForward); err != nil {
		t.Fatal(err)
	}
	b = testBody(t, 1)
	if err := e.Enqueue(t.Context(), b, metaHeader(b)); !errors.Is(err, ErrEnqueue) {
		t.Fatalf("Enqueue with FORWARD gone = %v; want ErrEnqueue", err)
	}
	if err := e.Enqueue(t.Context(), b, metaHeader(b)); err != nil {
		t.Fatalf("second Enqueue after FORWARD was deleted: %v", err)
	}
	d, _ := parseDestinations(cfg.URLs)
	if _, err := js.Consumer(t.Context(), StreamForward, d[0].consumer()); err != nil {
		t.Errorf("consumer after set-up again: %v", err)
	}
}
