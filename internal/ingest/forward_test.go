package ingest

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// fakeEnqueuer records the bodies handed to forwarding, or fails with err.
type fakeEnqueuer struct {
	err    error
	bodies [][]byte
	sigs   []string
}

func (f *fakeEnqueuer) Enqueue(_ context.Context, body []byte, h http.Header) error {
	if f.err != nil {
		return f.err
	}
	f.bodies = append(f.bodies, append([]byte(nil), body...))
	f.sigs = append(f.sigs, h.Get(webhook.SignatureHeader))
	return nil
}

func newForwardEnv(t *testing.T, enq Enqueuer) *testEnv {
	t.Helper()
	store, mr := newMiniStore(t)
	reg := prometheus.NewRegistry()
	srv, err := New(testConfig(), Deps{Logger: zaptest.NewLogger(t), Store: store, Registerer: reg, Forward: enq})
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, srv: srv, store: store, mr: mr, reg: reg}
}

// TestPostWebhookForwards holds the order of the checks: only verified
// bodies are enqueued, byte for byte with their signature, and the 200
// waits for the enqueue.
func TestPostWebhookForwards(t *testing.T) {
	enq := &fakeEnqueuer{}
	e := newForwardEnv(t, enq)
	body := fixture(t, "messenger_message_with_ad_referral.json")
	if rec := e.post(body, "wrong-secret-0123456789"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("badly signed POST = %d; want 401", rec.Code)
	}
	if len(enq.bodies) != 0 {
		t.Fatalf("a badly signed body was enqueued")
	}
	if rec := e.post(body, testAppSecret); rec.Code != http.StatusOK {
		t.Fatalf("POST = %d; want 200", rec.Code)
	}
	if len(enq.bodies) != 1 || string(enq.bodies[0]) != string(body) || enq.sigs[0] != webhook.Sign(body, []byte(testAppSecret)) {
		t.Fatalf("enqueued %d bodies; want the signed body once, byte for byte", len(enq.bodies))
	}
	// A body ingest cannot parse is still the downstream's business.
	if rec := e.post([]byte(`[1]`), testAppSecret); rec.Code != http.StatusBadRequest || len(enq.bodies) != 2 {
		t.Fatalf("non-object POST = %d with %d enqueued; want 400 after the enqueue", rec.Code, len(enq.bodies))
	}
}

func TestPostWebhookForwardErrors(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("%w: nats: timeout", ErrForwardQueue), http.StatusServiceUnavailable},
		{ErrForwardTooLarge, http.StatusRequestEntityTooLarge},
	} {
		e := newForwardEnv(t, &fakeEnqueuer{err: tt.err})
		body := fixture(t, "messenger_message_with_ad_referral.json")
		if rec := e.post(body, testAppSecret); rec.Code != tt.want {
			t.Errorf("POST with Enqueue failing with %v = %d; want %d", tt.err, rec.Code, tt.want)
		}
	}
}
