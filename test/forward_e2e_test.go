package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/forward"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// inbox is a downstream that verifies Meta's signature with the app secret,
// as the partner's inbox does, and answers 500 to its first failFirst
// attempts.
type inbox struct {
	t         *testing.T
	failFirst int

	mu        sync.Mutex
	attempts  int
	badSig    int
	delivered map[string]int // body → 2xx answers
}

func (b *inbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.attempts++
	if r.Header.Get(webhook.SignatureHeader) != webhook.Sign(body, []byte(faultAppSecret)) || r.Header.Get("Content-Type") != "application/json" {
		b.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if b.attempts <= b.failFirst {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	b.delivered[string(body)]++
	w.WriteHeader(http.StatusOK)
}

func (b *inbox) count(body []byte) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.delivered[string(body)]
}

// forwardBodies are n distinct webhook bodies ingest stores nothing of
// (200 "ignored") and forwards whole.
func forwardBodies(run string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"object":"page","entry":[{"id":"109800000000001","time":%d,"messaging":[{"sender":{"id":"%s-%d"},"recipient":{"id":"109800000000001"},"timestamp":%d,"message":{"mid":"m-%s-%d","text":"hi"}}]}]}`,
			time.Now().UnixMilli(), run, i, time.Now().UnixMilli(), run, i)
	}
	return out
}

// Forwarding end to end (issue 13): the built ingest forwards every verified
// /webhook delivery byte for byte with Meta's signature to a downstream
// that checks it with the app secret; its first three 500s are retried,
// NATS restarted mid-stream loses nothing, and every delivery arrives.
func TestForwardE2E(t *testing.T) {
	in := &inbox{t: t, failFirst: 3, delivered: map[string]int{}}
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)
	r := newFaultRig(t, faultOptions{IngestEnv: []string{
		"FORWARD_URLS=" + srv.URL + "/meta", "FORWARD_RETRY_MIN=50ms", "FORWARD_RETRY_MAX=200ms",
	}})
	bodies := forwardBodies(r.run, 20)
	for i, b := range bodies[:10] {
		if code := r.post(b); code != http.StatusOK {
			t.Fatalf("POST %d = %d; want 200", i, code)
		}
	}
	// NATS restarted mid-stream: the deliveries answered 503 meanwhile are
	// redelivered, as Meta does, and none is lost.
	r.nats.Restart()
	for i, b := range bodies[10:] {
		if err := r.redeliver(b, 60*time.Second); err != nil {
			t.Fatalf("POST %d: %v", 10+i, err)
		}
	}
	// A body signed with another secret is refused and never forwarded.
	if code := r.postWith(bodies[0], webhook.Sign(bodies[0], []byte("not-the-app-secret"))); code != http.StatusUnauthorized {
		t.Fatalf("badly signed POST = %d; want 401", code)
	}
	waitFor(t, 60*time.Second, "every body at the downstream", func() bool {
		for _, b := range bodies {
			if in.count(b) == 0 {
				return false
			}
		}
		return true
	})
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.badSig != 0 {
		t.Errorf("%d forwarded requests failed the signature check", in.badSig)
	}
	if in.attempts < len(bodies)+3 {
		t.Errorf("%d attempts; want the 3 failures retried on top of %d deliveries", in.attempts, len(bodies))
	}
}

// A dead destination (it hangs until FORWARD_TIMEOUT) does not change
// ingest's answers to Meta: every webhook still gets 200 within
// RESPONSE_DEADLINE; after FORWARD_MAX_AGE its deliveries are dead letters
// dlq.forward, one per body.
func TestForwardDeadDestinationE2E(t *testing.T) {
	quit := make(chan struct{})
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-quit:
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(dead.Close)
	t.Cleanup(func() { close(quit) }) // first: Close waits for the handlers
	r := newFaultRig(t, faultOptions{IngestEnv: []string{
		"FORWARD_URLS=" + dead.URL + "/hook", "FORWARD_MAX_AGE=3s", "FORWARD_TIMEOUT=500ms",
		"FORWARD_RETRY_MIN=100ms", "FORWARD_RETRY_MAX=300ms", "RESPONSE_DEADLINE=4s",
	}})
	// Meta's view: a client that gives up at the response deadline.
	meta := &http.Client{Timeout: 4 * time.Second}
	bodies := forwardBodies(r.run, 10)
	for i, b := range bodies {
		req, _ := http.NewRequest(http.MethodPost, r.ingest+"/webhook", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(b, []byte(faultAppSecret)))
		resp, err := meta.Do(req)
		if err != nil {
			t.Fatalf("POST %d: no answer within the deadline: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %d = %d; want 200", i, resp.StatusCode)
		}
	}
	var letters int
	waitFor(t, 60*time.Second, "a dead letter dlq.forward per body", func() bool {
		letters = countSubject(t, r.js, "DLQ", forward.SubjectDeadLetter)
		return letters >= len(bodies)
	})
	if letters != len(bodies) {
		t.Errorf("%d dead letters; want %d", letters, len(bodies))
	}
}

// countSubject counts the messages of stream on subject.
func countSubject(t *testing.T, js jetstream.JetStream, stream, subject string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0
	}
	return int(info.State.Subjects[subject])
}
