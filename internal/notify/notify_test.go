package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
)

const secret = "notify-test-secret"

// receiver records signed notifications; it answers 500 to the first fail
// attempts.
type receiver struct {
	mu       sync.Mutex
	fail     int
	attempts int
	got      []Notification
	bad      []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts++
	if !Verify(secret, body, r.Header.Get(HeaderSignature)) {
		rc.bad = append(rc.bad, "signature")
	}
	if rc.attempts <= rc.fail {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil {
		rc.bad = append(rc.bad, err.Error())
	}
	if r.Header.Get(HeaderID) != n.ID || r.Header.Get(HeaderType) != n.Type {
		rc.bad = append(rc.bad, "headers differ from the body")
	}
	rc.got = append(rc.got, n)
}

func (rc *receiver) notifications() ([]Notification, int, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Notification(nil), rc.got...), rc.attempts, append([]string(nil), rc.bad...)
}

// checkFor polls cond until it returns nil or d passes, then fails with its
// last error.
func checkFor(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func setup(t *testing.T, rc *receiver, cfg Config) (*Publisher, jetstream.JetStream, context.CancelFunc, *sync.WaitGroup) {
	t.Helper()
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	js, err := jetstream.New(natstest.RunJetStream(t).Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.URLs, cfg.Secret = []string{srv.URL + "/hook?key=k"}, secret
	cfg.RetryMin, cfg.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	p, err := NewPublisher(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDeliverer(js, cfg, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return p, js, cancel, &wg
}

// A notification refused with 500 is retried and arrives signed, once,
// even when told twice (two senders saw the same pause).
func TestDeliverRetriesAndDeduplicates(t *testing.T) {
	rc := &receiver{fail: 2}
	p, _, _, _ := setup(t, rc, Config{})
	since := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	n := Paused("1091000000000001", since, 190, 463, "setup_fault", "Fix the access token.")
	for range 2 {
		if err := p.Notify(t.Context(), n); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Notify(t.Context(), Resumed("1091000000000001", since.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, func() error {
		got, attempts, bad := rc.notifications()
		if len(bad) > 0 {
			return errors.New(strings.Join(bad, "; "))
		}
		if len(got) != 2 || attempts != 4 {
			return errors.New("want paused then resumed after two refusals")
		}
		if got[0].Type != TypeBusinessPaused || got[1].Type != TypeBusinessResumed {
			return errors.New("out of order: " + got[0].Type + ", " + got[1].Type)
		}
		if got[0].MetaError == nil || got[0].MetaError.Code != 190 || !got[0].PausedSince.Equal(since) {
			return errors.New("paused without its error or since")
		}
		return nil
	})
}

// Past NOTIFY_MAX_AGE an undelivered notification becomes a dead letter on
// dlq.notify, with the receiver's host and never its path or query.
func TestDeliverDeadLetter(t *testing.T) {
	rc := &receiver{fail: 1 << 30}
	p, js, _, _ := setup(t, rc, Config{MaxAge: 200 * time.Millisecond})
	if err := p.Notify(t.Context(), Recovered("1092", time.Time{}, time.Now())); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, func() error {
		s, err := js.Stream(t.Context(), "DLQ")
		if err != nil {
			return err
		}
		m, err := s.GetLastMsgForSubject(t.Context(), SubjectDeadLetter)
		if err != nil {
			return err
		}
		if m.Header.Get(headerReason) != ReasonNotify || m.Header.Get(headerError) != "http 500" {
			return errors.New("dead letter headers: " + m.Header.Get(headerReason) + " " + m.Header.Get(headerError))
		}
		for k, vs := range m.Header {
			if strings.Contains(strings.Join(vs, ""), "key=k") || strings.Contains(strings.Join(vs, ""), "/hook") {
				return errors.New("header " + k + " holds the URL")
			}
		}
		return nil
	})
}

func TestConfigNeedsSecret(t *testing.T) {
	err := Config{URLs: []string{"https://partner.example/hook"}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "NOTIFY_SECRET") {
		t.Errorf("Validate without a secret = %v; want NOTIFY_SECRET named", err)
	}
	if p, err := NewPublisher(nil, Config{}); p != nil || err != nil {
		t.Errorf("NewPublisher(off) = %v, %v; want nil, nil", p, err)
	}
	var p *Publisher
	if err := p.Notify(t.Context(), Notification{}); err != nil {
		t.Errorf("nil Publisher: %v; want nothing done", err)
	}
}

// No notification carries more than ids, codes and our own words: the
// fields are a closed list.
func TestPayloadFields(t *testing.T) {
	n := DeadLettersRising("1091", time.Unix(3600, 0), time.Hour, 120, 100, "unattributed")
	b, _ := json.Marshal(n)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for k := range m {
		switch k {
		case "id", "type", "time", "business_id", "reason", "dead_letters":
		default:
			t.Errorf("unexpected field %q in %s", k, b)
		}
	}
	if n.ID != "dead_letters.rising:1091:3600" {
		t.Errorf("id = %q", n.ID)
	}
}
