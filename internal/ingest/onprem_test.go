package ingest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ctmpipe/ctmpipe/internal/admin"
)

// TestOnPremSecretGuessingLimited: of 30 wrong On-Premises secrets from one
// address, admin.GuardMaxFailures are compared (401) and the rest answered
// 429 with Retry-After, the right secret from that address too; another
// address is not affected; the failures are logged at WARN without the
// secrets (once, then summed: the alert's rate limit).
func TestOnPremSecretGuessingLimited(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	e := newTestEnv(t, nil, zap.New(core))
	body := fixture(t, "whatsapp_onprem_text_with_referral.json")
	from := func(addr string, header http.Header) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhook/onprem", bytes.NewReader(body))
		req.RemoteAddr = addr
		for k, v := range header {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		return rec
	}
	const attacker, client = "198.51.100.7:40000", "198.51.100.8:40000"
	n := map[int]int{}
	for i := range 30 {
		rec := from(attacker, http.Header{onPremSecretHeader: {"guess-" + strconv.Itoa(i)}})
		n[rec.Code]++
		if rec.Code == http.StatusTooManyRequests && rec.Header().Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if n[http.StatusUnauthorized] != admin.GuardMaxFailures || n[http.StatusTooManyRequests] != 30-admin.GuardMaxFailures {
		t.Fatalf("30 wrong secrets: %v; want %d answered 401 and the rest 429", n, admin.GuardMaxFailures)
	}
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth("any", testOnPremSecret)
	rec := from(attacker, r.Header)
	if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "try again in") {
		t.Fatalf("the right secret from the blocked address = %d %s; want 429 saying when to try again", rec.Code, rec.Body)
	}
	if rec := from(client, http.Header{onPremSecretHeader: {testOnPremSecret}}); rec.Code != http.StatusOK {
		t.Fatalf("the right secret from another address = %d %s; want 200", rec.Code, rec.Body)
	}
	alerts := logs.FilterMessage("on-premises secrets failing").All()
	if len(alerts) != 1 || alerts[0].ContextMap()["count"] != int64(1) {
		t.Fatalf("WARN lines %v; want one, at the first failure (the rest summed into the next)", alerts)
	}
	if logs.FilterMessageSnippet("too many wrong tokens").Len() != 1 {
		t.Error("no WARN when the address was blocked")
	}
	for _, l := range logs.All() {
		for k, v := range l.ContextMap() {
			if s, ok := v.(string); ok && (strings.Contains(s, "guess-") || strings.Contains(s, testOnPremSecret)) {
				t.Errorf("log %q field %s holds a secret", l.Message, k)
			}
		}
	}
}
