package forward

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ctmpipe/ctmpipe/internal/jsstream"
	"github.com/ctmpipe/ctmpipe/internal/poll"
)

func newEnqueuer(t testing.TB, js jetstream.JetStream, cfg Config) *Enqueuer {
	t.Helper()
	e, err := NewEnqueuer(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func bodiesN(t testing.TB, from, n int) [][]byte {
	var out [][]byte
	for i := from; i < from+n; i++ {
		out = append(out, testBody(t, i))
	}
	return out
}

// A downstream that verifies Meta's signature and fails the first three
// attempts of every body still gets each one exactly as Meta sent it.
func TestForwardVerifiedAfterFailures(t *testing.T) {
	_, js := runJetStream(t)
	down := newDownstream(t, 3)
	cfg := testConfig(time.Minute, down.URL+"/webhook")
	e := newEnqueuer(t, js, cfg)
	f, _ := startForwarder(t, js, cfg, zap.NewNop())
	bodies := bodiesN(t, 0, 20)
	enqueueAll(t, e, bodies)

	poll.CheckFor(t, 30*time.Second, func() error { return wantAll(down, bodies) })
	if down.bad != 0 {
		t.Errorf("downstream rejected %d requests' signatures; want 0", down.bad)
	}
	host := strings.TrimPrefix(down.URL, "http://")
	// The counters move just after the downstream's answer arrives.
	poll.CheckFor(t, 10*time.Second, func() error {
		if got := counter(f, host, outcomeDelivered); got != 20 {
			return fmt.Errorf("delivered = %v; want 20", got)
		}
		if got := counter(f, host, outcomeRetried); got != 60 {
			return fmt.Errorf("retried = %v; want 60 (three per body)", got)
		}
		return nil
	})
}

// Restarting NATS while every body is undelivered (backing off after a
// failed attempt) loses none, and Enqueue works again once it is back.
func TestForwardSurvivesNATSRestart(t *testing.T) {
	srv, js := runJetStream(t)
	down := newDownstream(t, 0)
	down.setDead(true)
	cfg := testConfig(time.Minute, down.URL)
	e := newEnqueuer(t, js, cfg)
	startForwarder(t, js, cfg, zap.NewNop())
	first := bodiesN(t, 0, 30)
	enqueueAll(t, e, first)
	poll.CheckFor(t, 30*time.Second, func() error {
		down.mu.Lock()
		defer down.mu.Unlock()
		if len(down.attempts) != len(first) {
			return fmt.Errorf("%d of %d bodies attempted", len(down.attempts), len(first))
		}
		return nil
	})
	srv.Restart()
	second := bodiesN(t, 30, 30)
	enqueueAll(t, e, second)
	down.setDead(false)

	poll.CheckFor(t, 60*time.Second, func() error { return wantAll(down, append(first, second...)) })
}

// A dead destination's bodies end as dlq.forward dead letters after
// FORWARD_MAX_AGE, naming its host only, while a healthy one gets them all.
func TestForwardDeadDestinationDeadLetters(t *testing.T) {
	_, js := runJetStream(t)
	dead, healthy := newDownstream(t, 0), newDownstream(t, 0)
	dead.setDead(true)
	deadURL := strings.Replace(dead.URL, "http://", "http://user:hunter2@", 1) + "/hook?token=s3cret"
	cfg := testConfig(300*time.Millisecond, deadURL, healthy.URL)
	e := newEnqueuer(t, js, cfg)
	core, logs := observer.New(zapcore.DebugLevel)
	f, _ := startForwarder(t, js, cfg, zap.New(core))
	bodies := bodiesN(t, 0, 10)
	enqueueAll(t, e, bodies)

	poll.CheckFor(t, 30*time.Second, func() error { return wantAll(healthy, bodies) })
	deadHost := strings.TrimPrefix(dead.URL, "http://")
	poll.CheckFor(t, 30*time.Second, func() error {
		if got := counter(f, deadHost, outcomeDead); got != 10 {
			return fmt.Errorf("dead = %v; want 10", got)
		}
		return nil
	})
	letters := readDeadLetters(t, js)
	if len(letters) != 10 {
		t.Fatalf("dlq.forward holds %d letters; want 10", len(letters))
	}
	sent := map[string]bool{}
	for _, b := range bodies {
		sent[string(b)] = true
	}
	for _, m := range letters {
		h := m.Headers()
		if !sent[string(m.Data())] {
			t.Errorf("dead letter data is not an enqueued body")
		}
		for k, want := range map[string]string{headerReason: ReasonForward, HeaderHost: deadHost, headerError: "http 503", headerSubject: subjectTo + destinationID(deadURL)} {
			if got := h.Get(k); got != want {
				t.Errorf("dead letter %s = %q; want %q", k, got, want)
			}
		}
		for k, vs := range h {
			for _, v := range vs {
				if strings.Contains(v, "hunter2") || strings.Contains(v, "s3cret") || strings.Contains(v, "/hook") {
					t.Errorf("dead letter header %s = %q holds the URL's secret parts", k, v)
				}
			}
		}
	}
	for _, entry := range logs.All() {
		line := entry.Message + fmt.Sprint(entry.ContextMap())
		for _, secret := range []string{"hunter2", "s3cret", "/hook", "Is this still available", "6789012345678901"} {
			if strings.Contains(line, secret) {
				t.Errorf("log %q holds %q", line, secret)
			}
		}
	}
	if logs.FilterMessage("forward destination failing; retrying with backoff").Len() == 0 {
		t.Errorf("no log line says the dead destination is failing")
	}
}

// A consumer left by a URL no longer configured is named in a warning.
func TestForwarderWarnsStaleConsumer(t *testing.T) {
	_, js := runJetStream(t)
	old := newEnqueuer(t, js, testConfig(time.Minute, "https://old.example/hook"))
	b := testBody(t, 0)
	if err := old.Enqueue(t.Context(), b, metaHeader(b)); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.WarnLevel)
	startForwarder(t, js, testConfig(time.Minute, newDownstream(t, 0).URL), zap.New(core))
	stale := destination{id: destinationID("https://old.example/hook")}.consumer()
	poll.CheckFor(t, 10*time.Second, func() error {
		for _, e := range logs.All() {
			if e.ContextMap()["consumer"] == stale {
				return nil
			}
		}
		return fmt.Errorf("no warning names %s", stale)
	})
}

// A longer FORWARD_MAX_AGE raises FORWARD's MaxAge; DLQ's, the sender's
// to set, is left alone.
func TestStreamsMaxAge(t *testing.T) {
	_, js := runJetStream(t)
	short := jsstream.DLQ(1)
	short.MaxAge = 7 * 24 * time.Hour
	if _, err := js.CreateStream(t.Context(), short); err != nil {
		t.Fatal(err)
	}
	for _, age := range []time.Duration{time.Hour, 72 * time.Hour} {
		_, stop := startForwarder(t, js, testConfig(age, newDownstream(t, 0).URL), zap.NewNop())
		poll.CheckFor(t, 10*time.Second, func() error {
			s, err := js.Stream(t.Context(), StreamForward)
			if err != nil {
				return err
			}
			if got := s.CachedInfo().Config.MaxAge; got != age+streamMargin {
				return fmt.Errorf("FORWARD MaxAge = %v; want %v", got, age+streamMargin)
			}
			return nil
		})
		stop()
	}
	s, err := js.Stream(t.Context(), streamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != short.MaxAge {
		t.Errorf("DLQ MaxAge = %v; want the sender's %v kept", got, short.MaxAge)
	}
}

// A destination that fails shows its backlog in forward_pending and its
// age in forward_lag_seconds; both drop to 0 once it is delivered.
func TestPendingAndLagGauges(t *testing.T) {
	_, js := runJetStream(t)
	down := newDownstream(t, 0)
	down.setDead(true)
	cfg := testConfig(time.Minute, down.URL)
	e := newEnqueuer(t, js, cfg)
	f, _ := startForwarder(t, js, cfg, zap.NewNop())
	enqueueAll(t, e, bodiesN(t, 0, 5))
	d := f.dests[0]
	cons, err := js.Consumer(t.Context(), StreamForward, d.consumer())
	if err != nil {
		t.Fatal(err)
	}
	gauges := func() (float64, float64) {
		f.observe(t.Context(), d, cons)
		return testutil.ToFloat64(f.m.pending.WithLabelValues(d.label)), testutil.ToFloat64(f.m.lag.WithLabelValues(d.label))
	}
	poll.CheckFor(t, 10*time.Second, func() error {
		if p, lag := gauges(); p != 5 || lag <= 0 {
			return fmt.Errorf("pending %v, lag %v; want 5 and above 0", p, lag)
		}
		return nil
	})
	down.setDead(false)
	poll.CheckFor(t, 30*time.Second, func() error {
		if p, lag := gauges(); p != 0 || lag != 0 {
			return fmt.Errorf("pending %v, lag %v; want 0 and 0", p, lag)
		}
		return nil
	})
}

// A connection error's text (Go's includes the whole URL) reaches neither
// the dead letter nor the logs with the URL's path, userinfo or query.
func TestForwardTransportErrorHidesURL(t *testing.T) {
	_, js := runJetStream(t)
	gone := newDownstream(t, 0)
	gone.Close()
	url := strings.Replace(gone.URL, "http://", "http://user:hunter2@", 1) + "/hook?token=s3cret"
	cfg := testConfig(100*time.Millisecond, url)
	e := newEnqueuer(t, js, cfg)
	core, logs := observer.New(zapcore.DebugLevel)
	f, _ := startForwarder(t, js, cfg, zap.New(core))
	enqueueAll(t, e, bodiesN(t, 0, 1))
	host := strings.TrimPrefix(gone.URL, "http://")
	poll.CheckFor(t, 30*time.Second, func() error {
		if got := counter(f, host, outcomeDead); got != 1 {
			return fmt.Errorf("dead = %v; want 1", got)
		}
		return nil
	})
	letters := readDeadLetters(t, js)
	if len(letters) != 1 {
		t.Fatalf("%d dead letters; want 1", len(letters))
	}
	text := letters[0].Headers().Get(headerError)
	if !strings.HasPrefix(text, "post: ") {
		t.Errorf("Ctm-Dlq-Error = %q; want the connection error", text)
	}
	for _, entry := range logs.All() {
		text += entry.Message + fmt.Sprint(entry.ContextMap())
	}
	for _, secret := range []string{"hunter2", "s3cret", "/hook"} {
		if strings.Contains(text, secret) {
			t.Errorf("dead letter or logs hold %q: %s", secret, text)
		}
	}
}
