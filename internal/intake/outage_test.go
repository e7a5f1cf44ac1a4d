package intake

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

// retryUntilAccepted posts body as a client would after a 503: again, the
// whole body, until it gets a 202, which it returns.
func (e *env) retryUntilAccepted(body []byte) reply {
	e.t.Helper()
	var r reply
	poll.CheckFor(e.t, 30*time.Second, func() error {
		r = e.post(body, "application/x-ndjson")
		if r.Status != http.StatusAccepted {
			return fmt.Errorf("POST = %d %s", r.Status, r.Raw)
		}
		return nil
	})
	return r
}

// NATS away: 503 saying to retry, nothing lost; the retry after NATS is
// back stores every item once, those stored before the outage counting as
// duplicates.
func TestNATSAwayThenRetry(t *testing.T) {
	e := newEnv(t, Config{AckTimeout: 2 * time.Second}, false)
	items := conversions("away", MaxItems)
	body := ndjson(items)
	// An earlier request got the first 300 stored.
	if r := e.post(ndjson(items[:300]), "application/x-ndjson"); r.Status != http.StatusAccepted || r.Accepted != 300 {
		t.Fatalf("first POST = %d %s; want 300 accepted", r.Status, r.Raw)
	}

	e.nats.Server.Shutdown()
	poll.CheckFor(t, 10*time.Second, func() error {
		if st := e.h.pub.Conn().Status(); st == nats.CONNECTED {
			return errors.New("the intake's connection is still connected")
		}
		return nil
	})
	r := e.post(body, "application/x-ndjson")
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Error, "retry the whole body") || r.Header.Get("Retry-After") == "" {
		t.Fatalf("POST with NATS away = %d %s (Retry-After %q); want 503 saying to retry", r.Status, r.Raw, r.Header.Get("Retry-After"))
	}

	e.nats.Restart()
	r = e.retryUntilAccepted(body)
	if r.Accepted+r.Duplicates != MaxItems || r.Duplicates < 300 {
		t.Errorf("retry = %s; want 1000 taken, at least the 300 stored before as duplicates", r.Raw)
	}
	e.storedOnce(items)
	if got := testutil.ToFloat64(e.h.m.requests.WithLabelValues("503")); got < 1 {
		t.Errorf(`intake_requests_total{code="503"} = %v; want at least 1`, got)
	}
}

// cutAfter shuts NATS down in the middle of a request: right before its
// n-th publish.
type cutAfter struct {
	publisher
	n, count int
	cut      func()
}

func (c *cutAfter) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	c.count++ // requests are sequential in this test
	if c.count == c.n {
		c.cut()
	}
	return c.publisher.PublishMsgAsync(m, opts...)
}

// NATS dies half-way through publishing a body: the request gets 503
// (whatever the client library still had buffered may be stored after the
// restart), and the client's retry of the whole body leaves every item in
// the stream exactly once.
func TestNATSDiesMidRequest(t *testing.T) {
	var e *env
	e = newEnvWrap(t, Config{AckTimeout: 2 * time.Second}, false, func(p publisher) publisher {
		return &cutAfter{publisher: p, n: 500, cut: func() { e.nats.Server.Shutdown() }}
	})
	items := conversions("cut", MaxItems)
	body := ndjson(items)
	if r := e.post(body, "application/x-ndjson"); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("POST while NATS dies = %d %s; want 503", r.Status, r.Raw)
	} else {
		t.Logf("POST while NATS dies: %s", r.Error)
	}
	e.nats.Restart()
	r := e.retryUntilAccepted(body)
	t.Logf("retry after the restart: %d accepted, %d duplicates", r.Accepted, r.Duplicates)
	if r.Accepted+r.Duplicates != MaxItems {
		t.Errorf("retry = %s; want 1000 taken", r.Raw)
	}
	e.storedOnce(items)
}

// Until the sender has created stream CONVERSIONS, the intake answers 503
// saying so, and does not create the stream itself.
func TestNoStreamYet(t *testing.T) {
	e := newEnv(t, Config{}, true)
	items := conversions("early", 2)
	r := e.post(ndjson(items), "application/x-ndjson")
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Error, "the sender creates stream CONVERSIONS") {
		t.Fatalf("POST without the stream = %d %s; want 503 naming the sender", r.Status, r.Raw)
	}
	if _, err := e.js.Stream(t.Context(), streamConversions); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("stream CONVERSIONS after the POST: %v; want not found", err)
	}
	createStreamsAsSender(t, e.nats, e.js)
	if r := e.post(ndjson(items), "application/x-ndjson"); r.Status != http.StatusAccepted || r.Accepted != 2 {
		t.Fatalf("POST once the sender ran = %d %s; want 2 accepted", r.Status, r.Raw)
	}
	e.storedOnce(items)
}

// A stream other than CONVERSIONS on conversions.> is a setup error: 500,
// logged, nothing stored in it.
func TestWrongStream(t *testing.T) {
	e := newEnv(t, Config{}, true)
	if _, err := e.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"conversions.>"}}); err != nil {
		t.Fatal(err)
	}
	r := e.post(conversions("wrong", 1)[0].json, "application/json")
	if r.Status != http.StatusInternalServerError {
		t.Fatalf("POST with stream OTHER = %d %s; want 500", r.Status, r.Raw)
	}
	st, err := e.js.Stream(t.Context(), "OTHER")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("stream OTHER holds %d messages; want 0", n)
	}
	if e.logs.FilterMessage("conversions not taken").Len() != 1 {
		t.Errorf("the setup error was not logged")
	}
}

// With every slot taken, a request waits at most INTAKE_ACK_TIMEOUT after
// its body was read, then gets 503.
func TestBusy(t *testing.T) {
	e := newEnv(t, Config{Concurrency: 1, AckTimeout: 300 * time.Millisecond}, false)
	e.h.slots <- struct{}{} // a request being published holds the only slot
	r := e.post(conversions("busy", 1)[0].json, "application/json")
	<-e.h.slots
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Error, "INTAKE_CONCURRENCY") {
		t.Errorf("POST with every slot taken = %d %s; want 503 naming INTAKE_CONCURRENCY", r.Status, r.Raw)
	}
}

// TestSlowUploadsDoNotStarve: four authenticated bodies trickling in (one
// byte, then nothing) hold no slot of the four: a fast POST meanwhile is
// answered 202, and each slow one gets 408 at INTAKE_ACK_TIMEOUT. Before,
// each slow upload took a slot before reading, and every other POST got
// 503.
func TestSlowUploadsDoNotStarve(t *testing.T) {
	e := newEnv(t, Config{Concurrency: 4, AckTimeout: 2 * time.Second}, false)
	arrived := make(chan struct{}, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Slow") != "" {
			arrived <- struct{}{}
		}
		e.h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e.srv = srv
	codes := make(chan int, 4)
	var pipes []*io.PipeWriter
	var wg sync.WaitGroup
	for range 4 {
		pr, pw := io.Pipe()
		pipes = append(pipes, pw)
		req, err := http.NewRequest(http.MethodPost, srv.URL+Path, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("X-Slow", "1")
		wg.Go(func() {
			resp, err := srv.Client().Do(req)
			if err != nil {
				codes <- -1
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
		wg.Go(func() { _, _ = pw.Write([]byte("{")) })
	}
	for range 4 {
		<-arrived
	}
	start := time.Now()
	r := e.post(conversions("fast", 1)[0].json, "application/json")
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST while four slow uploads trickle in = %d %s after %v; want 202", r.Status, r.Raw, time.Since(start))
	}
	for range 4 {
		if code := <-codes; code != http.StatusRequestTimeout && code != -1 {
			t.Errorf("slow upload = %d; want 408 (or the connection closed while it still sent)", code)
		}
	}
	for _, pw := range pipes {
		pw.Close()
	}
	wg.Wait()
}
