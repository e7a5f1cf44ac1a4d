package forward

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

// testSecret is the app secret Meta would sign with; the downstream
// verifies with it, as it did when Meta called it directly.
const testSecret = "test-app-secret"

const contentType = "application/json"

// testBody is the i-th delivery: the scrubbed Messenger fixture with its
// entry time changed, so that every body differs.
func testBody(t testing.TB, i int) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/messenger_message_with_ad_referral.json")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Replace(raw, []byte("1763900000999"), []byte(strconv.Itoa(1763900000000+i)), 1)
}

// metaHeader is the header Meta sends with body.
func metaHeader(body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", contentType)
	h.Set(HeaderSignature, webhook.Sign(body, []byte(testSecret)))
	m := hmac.New(sha1.New, []byte(testSecret))
	m.Write(body)
	h.Set(headerSignatureSHA1, "sha1="+hex.EncodeToString(m.Sum(nil)))
	return h
}

// downstream is an inbox behind ingest: it verifies each request's
// signature with the app secret and records what it accepted.
type downstream struct {
	*httptest.Server
	t testing.TB

	mu        sync.Mutex
	failFirst int            // answer 500 to the first failFirst attempts of each body
	dead      bool           // answer 503 to everything verified
	attempts  map[string]int // by X-Ctm-Delivery-Id
	accepted  map[string][]byte
	headers   map[string]http.Header
	delivered int // 2xx answers
	bad       int // requests that failed verification
}

func newDownstream(t testing.TB, failFirst int) *downstream {
	t.Helper()
	d := &downstream{t: t, failFirst: failFirst, attempts: map[string]int{}, accepted: map[string][]byte{}, headers: map[string]http.Header{}}
	d.Server = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.Close)
	return d
}

func (d *downstream) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := webhook.Verify(body, r.Header.Get(HeaderSignature), [][]byte{[]byte(testSecret)}); err != nil || r.Method != http.MethodPost {
		d.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := r.Header.Get(HeaderDeliveryID)
	d.attempts[id]++
	if d.dead {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if d.attempts[id] <= d.failFirst {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	d.delivered++
	d.accepted[id] = body
	d.headers[id] = r.Header.Clone()
	w.WriteHeader(http.StatusNoContent)
}

func (d *downstream) setDead(dead bool) {
	d.mu.Lock()
	d.dead = dead
	d.mu.Unlock()
}

// bodies returns the accepted bodies, and how many 2xx answers it gave.
func (d *downstream) bodies() (map[string][]byte, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string][]byte, len(d.accepted))
	for k, v := range d.accepted {
		out[k] = v
	}
	return out, d.delivered
}

// runJetStream starts an in-process JetStream and returns it with a
// client.
func runJetStream(t testing.TB) (*natstest.Server, jetstream.JetStream) {
	t.Helper()
	srv := natstest.RunJetStream(t)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	return srv, js
}

// testConfig retries fast and gives up after maxAge.
func testConfig(maxAge time.Duration, urls ...string) Config {
	return Config{URLs: urls, MaxAge: maxAge, Concurrency: 4, Timeout: time.Second, RetryMin: 5 * time.Millisecond, RetryMax: 40 * time.Millisecond}
}

// startForwarder runs a Forwarder until the test ends.
func startForwarder(t testing.TB, js jetstream.JetStream, cfg Config, log *zap.Logger) (*Forwarder, func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	f, err := New(js, cfg, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return f, stop
}

// enqueueAll enqueues bodies, retrying each until JetStream takes it, as
// Meta retries a 503.
func enqueueAll(t testing.TB, e *Enqueuer, bodies [][]byte) {
	t.Helper()
	for i, b := range bodies {
		poll.CheckFor(t, 20*time.Second, func() error {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			if err := e.Enqueue(ctx, b, metaHeader(b)); err != nil {
				return fmt.Errorf("enqueue %d: %w", i, err)
			}
			return nil
		})
	}
}

// counter reads forward_deliveries_total for host and outcome.
func counter(f *Forwarder, label, outcome string) float64 {
	return testutil.ToFloat64(f.m.deliveries.WithLabelValues(label, outcome))
}

// wantAll checks that d accepted exactly bodies (by delivery id), each
// byte for byte with Meta's headers, once.
func wantAll(d *downstream, bodies [][]byte) error {
	got, n := d.bodies()
	if len(got) != len(bodies) {
		return fmt.Errorf("downstream has %d of %d bodies", len(got), len(bodies))
	}
	for _, b := range bodies {
		h := metaHeader(b)
		id := msgID(h.Get(HeaderSignature), b)
		if !bytes.Equal(got[id], b) {
			return fmt.Errorf("body %s… differs from what was enqueued", id[:8])
		}
		d.mu.Lock()
		gh := d.headers[id]
		d.mu.Unlock()
		for _, k := range []string{"Content-Type", HeaderSignature, headerSignatureSHA1} {
			if gh.Get(k) != h.Get(k) {
				return fmt.Errorf("body %s…: %s = %q; want %q", id[:8], k, gh.Get(k), h.Get(k))
			}
		}
	}
	if n != len(bodies) {
		return fmt.Errorf("downstream answered 2xx %d times for %d bodies", n, len(bodies))
	}
	return nil
}

// atomicCounter hands out 0, 1, 2, … to parallel benchmark goroutines.
type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) add() int { return int(c.n.Add(1) - 1) }
