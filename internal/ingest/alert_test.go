package ingest

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fakeClock is a settable time for the alerts.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newAlertEnv is a testEnv whose WARN lines are observed and whose alerts
// run on a fake clock.
func newAlertEnv(t *testing.T) (*testEnv, *observer.ObservedLogs, *fakeClock) {
	t.Helper()
	core, logs := observer.New(zapcore.WarnLevel)
	e := newTestEnv(t, nil, zap.New(core))
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	for _, a := range []*alert{e.srv.alerts.signature, e.srv.alerts.store, e.srv.alerts.overload, e.srv.alerts.deadline} {
		a.now = clock.now
	}
	return e, logs, clock
}

// A wrong app secret is heard of at once, in one WARN line per interval
// with the count, however many deliveries fail.
func TestSignatureFailuresAlert(t *testing.T) {
	e, logs, clock := newAlertEnv(t)
	body := fixture(t, "whatsapp_cloud_text_with_ctwa_referral.json")
	for range 5 {
		if rec := e.post(body, "not-the-app-secret"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("POST with a wrong secret = %d; want 401", rec.Code)
		}
	}
	lines := logs.FilterMessage("webhook signatures failing").All()
	if len(lines) != 1 || lines[0].ContextMap()["reason"] != sigMismatch || lines[0].ContextMap()["count"] != int64(1) {
		t.Fatalf("after 5 failures: %d alert lines (%v); want 1, reason mismatch, count 1", len(lines), lines)
	}
	clock.add(alertEvery)
	e.post(body, "")
	lines = logs.FilterMessage("webhook signatures failing").All()
	if len(lines) != 2 || lines[1].ContextMap()["count"] != int64(5) || lines[1].ContextMap()["reason"] != sigMissing {
		t.Errorf("after the interval: %d lines, last %v; want 2, the last counting 5 and reason missing", len(lines), lines[len(lines)-1].ContextMap())
	}
	if got := count(t, e.srv.m.sigFailures); got != 6 {
		t.Errorf("ingest_signature_failures_total = %v; want 6", got)
	}
}

// Store failures answer 503 and alert the same way.
func TestStoreErrorsAlert(t *testing.T) {
	e, logs, _ := newAlertEnv(t)
	e.mr.SetError("ERR injected failure")
	body := fixture(t, "whatsapp_cloud_text_with_ctwa_referral.json")
	for range 3 {
		if rec := e.post(body, testAppSecret); rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("POST with the store failing = %d; want 503", rec.Code)
		}
	}
	if n := len(logs.FilterMessage("store unavailable").All()); n != 1 {
		t.Errorf("%d store alert lines after 3 failures; want 1", n)
	}
	if got := e.webhooks(chanWhatsApp, outStoreError); got != 3 {
		t.Errorf("outcome store_error = %v; want 3", got)
	}
}
