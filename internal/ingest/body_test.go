package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

// wellFormed is a signature of the right form that matches no secret.
var wellFormed = "sha256=" + strings.Repeat("ab", 32)

// readCounter is a body that counts the reads made of it.
type readCounter struct {
	r     io.Reader
	reads atomic.Int32
}

func (c *readCounter) Read(p []byte) (int, error) { c.reads.Add(1); return c.r.Read(p) }

// A missing or malformed signature is refused before a byte of the body is
// read: such requests cost no body buffer.
func TestSignatureRefusedBeforeBody(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	body := fixture(t, "whatsapp_cloud_text_with_ctwa_referral.json")
	good := webhook.Sign(body, []byte(testAppSecret))
	for _, header := range []string{"", "sha256=", strings.ToUpper(good), good[:len(good)-2], "sha1=" + good[7:], good + " "} {
		rc := &readCounter{r: bytes.NewReader(body)}
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhook", rc)
		if header != "" {
			req.Header.Set(webhook.SignatureHeader, header)
		}
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || rc.reads.Load() != 0 {
			t.Errorf("POST with signature %q = %d after %d body reads; want 401 after none", header, rec.Code, rc.reads.Load())
		}
	}
	if got := count(t, e.srv.m.sigFailures); got != 6 {
		t.Errorf("ingest_signature_failures_total = %v; want 6", got)
	}
}

// pendingPost starts a POST /webhook announcing contentLength whose body
// arrives as the test writes it. The handler's answer comes on the channel
// once the test closes the writer.
func pendingPost(t *testing.T, h http.Handler, contentLength int64) (*io.PipeWriter, <-chan int) {
	t.Helper()
	pr, pw := io.Pipe()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhook", pr)
	req.ContentLength = contentLength
	req.Header.Set(webhook.SignatureHeader, wellFormed)
	done, ended := make(chan int, 1), make(chan struct{})
	go func() {
		defer close(ended)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		pr.Close()
		done <- rec.Code
	}()
	t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF); <-ended })
	return pw, done
}

// A body's buffer grows with the bytes that arrived, not with the
// Content-Length announced; everything goes back when the request ends.
func TestBodyBufferGrowsAsBytesArrive(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	pw, done := pendingPost(t, e.srv.Handler(), DefaultBodyLimit)
	// io.Pipe's Write returns once the handler has read the bytes.
	if _, err := pw.Write([]byte("{")); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.budget.used.Load(); got != firstChunk {
		t.Errorf("after 1 byte of a body announced at %d: %d bytes reserved; want %d", DefaultBodyLimit, got, firstChunk)
	}
	if got := e.srv.budget.bodies.Load(); got != 1 {
		t.Errorf("bodies in flight = %d; want 1", got)
	}
	const more = 100 << 10
	if _, err := pw.Write(bytes.Repeat([]byte(" "), more)); err != nil {
		t.Fatal(err)
	}
	if got, most := e.srv.budget.used.Load(), int64(firstChunk+2*(more+1)); got > most {
		t.Errorf("after %d bytes: %d bytes reserved; want at most %d", more+1, got, most)
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
	if code := <-done; code != http.StatusBadRequest {
		t.Errorf("cut-off body = %d; want 400", code)
	}
	if used, n := e.srv.budget.used.Load(), e.srv.budget.bodies.Load(); used != 0 || n != 0 {
		t.Errorf("after the request: %d bytes reserved by %d bodies; want none", used, n)
	}
}

// Past MAX_BODY_BYTES_IN_FLIGHT a request gets 503 (Meta retries), and the
// ones in flight are not disturbed.
func TestBodyBudgetFull(t *testing.T) {
	cfg := testConfig()
	cfg.BodyLimit = 64 << 10
	cfg.MaxBodyBytesInFlight = 128 << 10
	e := newTestEnv(t, &cfg, nil)
	// A holds its first chunk and a 64 KiB buffer: 80 KiB.
	pw, done := pendingPost(t, e.srv.Handler(), 64<<10)
	if _, err := pw.Write(bytes.Repeat([]byte(" "), 40<<10)); err != nil {
		t.Fatal(err)
	}
	// B needs 16 + 32 + 40 KiB on top: over the budget.
	b := append([]byte(`{"object":"page","entry":[]}`), bytes.Repeat([]byte(" "), 40<<10)...)
	if rec := e.post(b, testAppSecret); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "in flight") {
		t.Errorf("POST over the budget = %d %s; want 503", rec.Code, rec.Body)
	}
	if got := e.webhooks(chanUnknown, outOverloaded); got != 1 {
		t.Errorf("outcome overloaded = %v; want 1", got)
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
	<-done
	if rec := e.post(b, testAppSecret); rec.Code != http.StatusOK {
		t.Errorf("POST once the budget is free = %d; want 200", rec.Code)
	}
}

// BODY_LIMIT is 3 MiB by default, as Meta's payloads reach 3 MB: a body of
// exactly the limit is taken, one byte more gets 413, and so does an
// announced length over it, before anything is read.
func TestBodyLimitDefault(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	head := []byte(`{"object":"page","entry":[]}`)
	atLimit := append(head, bytes.Repeat([]byte(" "), DefaultBodyLimit-len(head))...)
	if rec := e.post(atLimit, testAppSecret); rec.Code != http.StatusOK {
		t.Errorf("POST of %d bytes = %d; want 200", len(atLimit), rec.Code)
	}
	if rec := e.post(append(atLimit, ' '), testAppSecret); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("POST of %d bytes = %d; want 413", len(atLimit)+1, rec.Code)
	}
	rc := &readCounter{r: bytes.NewReader(nil)}
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhook", rc)
	req.ContentLength = DefaultBodyLimit + 1
	req.Header.Set(webhook.SignatureHeader, wellFormed)
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || rc.reads.Load() != 0 {
		t.Errorf("Content-Length over the limit = %d after %d reads; want 413 after none", rec.Code, rc.reads.Load())
	}
}

// hungStore is a store that answers only when the caller gives up, as a
// stalled Redis does with go-redis.
type hungStore struct{}

func (hungStore) Record(ctx context.Context, _ []attribution.Touch) error {
	<-ctx.Done()
	return ctx.Err()
}

// One deadline per request: with the store stalled, the webhooks that hold
// the coalescer's writes and the one queued behind them all get 503 at
// RESPONSE_DEADLINE, counted and alerted, although STORE_TIMEOUT is an hour.
func TestResponseDeadline(t *testing.T) {
	cfg := testConfig()
	cfg.ResponseDeadline = 200 * time.Millisecond
	e := newTestEnv(t, &cfg, nil)
	e.srv.rec = newCoalescer(hungStore{}, time.Hour, e.srv.m.storeDuration, e.srv.m.batchSize)
	body := fixture(t, "whatsapp_cloud_text_with_ctwa_referral.json")
	const n = maxFlushers + 1 // one more than the writes in flight: it queues
	codes := make(chan string, n)
	for range n {
		go func() {
			rec := e.post(body, testAppSecret)
			codes <- fmt.Sprint(rec.Code, " ", strings.Contains(rec.Body.String(), "deadline"))
		}()
	}
	for range n {
		if got := <-codes; got != "503 true" {
			t.Errorf("POST with the store stalled = %s; want 503 naming the deadline", got)
		}
	}
	waitUntil(t, "the deadlines to be counted", func() bool { return count(t, e.srv.m.deadline) == n })
	if rec := e.do(http.MethodGet, "/healthz", nil, nil); rec.Code != http.StatusOK {
		t.Errorf("GET /healthz = %d; want 200", rec.Code)
	}
	if got := count(t, e.srv.m.deadline); got != n {
		t.Errorf("ingest_deadline_exceeded_total = %v after a fast request; want still %d", got, n)
	}
}

// waitUntil polls cond for up to 10 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.CheckFor(t, 10*time.Second, func() error { return poll.Until(what, cond()) })
}

// MAX_CONNECTIONS: while one connection holds the only slot, a second one
// is not served; it is as soon as the first closes.
func TestConnectionLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConnections = 1
	e := newTestEnv(t, &cfg, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })

	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// A request under way holds its slot (an idle connection would be
	// closed to make room: TestIdleConnectionsMakeRoom).
	io.WriteString(a, "GET /healthz HTTP/1.1\r\n")
	waitFor(t, 5*time.Second, "the first connection to be accepted", func() bool { return e.srv.conns.Load().open() == 1 })
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	second := make(chan int, 1)
	go func() {
		resp, err := client.Get("http://" + ln.Addr().String() + "/healthz")
		if err != nil {
			second <- -1
			return
		}
		resp.Body.Close()
		second <- resp.StatusCode
	}()
	// A bounded wait for something that must not happen: it cannot fail
	// when the limit works, however slow the machine.
	select {
	case code := <-second:
		t.Fatalf("second connection answered %d while the first held the only slot", code)
	case <-time.After(300 * time.Millisecond):
	}
	a.Close()
	if code := <-second; code != 200 {
		t.Errorf("second connection after the first closed = %d; want 200", code)
	}
}
