package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// personalData returns every user id, click id, name and message text in
// the fixtures: the values that must never reach a log.
func personalData(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	var walk func(parent string, v any)
	walk = func(parent string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				s, isStr := c.(string)
				switch {
				case !isStr:
					walk(k, c)
				case k == "wa_id" || k == "from" || k == "ctwa_clid" || k == "text" || k == "name",
					k == "user_id" || k == "from_user_id" || k == "parent_user_id" || k == "from_parent_user_id" || k == "username",
					k == "previous_user_id" || k == "previous_parent_user_id",
					k == "id" && parent == "sender",
					k == "body" && (parent == "text" || parent == "system"):
					if len(s) >= 3 {
						seen[s] = true
					}
				}
			}
		case []any:
			for _, c := range v {
				walk(parent, c)
			}
		}
	}
	for _, name := range fixtureNames(t) {
		var v any
		if err := json.Unmarshal(fixture(t, name), &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		walk("", v)
	}
	for _, ex := range expectations(t) {
		for _, tc := range ex.Touches {
			seen[tc.UserID] = true
			if tc.ClickID != "" {
				seen[tc.ClickID] = true
			}
		}
	}
	var out []string
	for s := range seen {
		out = append(out, s)
	}
	if len(out) < 10 {
		t.Fatalf("found only %d personal values in the fixtures: the walk is broken", len(out))
	}
	return out
}

// Run every fixture and every failure path through the server with logs at
// debug level, then look for ids, click ids, names, message text and
// secrets in every entry, in both the structured entries and the JSON text.
func TestLogsCarryNoPersonalDataOrSecrets(t *testing.T) {
	obsCore, observed := observer.New(zapcore.DebugLevel)
	var text lockedBuffer
	jsonCore := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&text), zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(obsCore, jsonCore))
	e := newTestEnv(t, nil, log)
	bearer := http.Header{"Authorization": {"Bearer " + testAdminToken}}
	onprem := http.Header{onPremSecretHeader: {testOnPremSecret}}

	exercise := func() {
		for _, name := range fixtureNames(t) {
			body := fixture(t, name)
			e.post(body, testAppSecret)
			e.post(body, "wrong-secret")
			e.post(body, "")
			e.do(http.MethodPost, "/webhook/onprem", body, onprem)
			e.do(http.MethodPost, "/webhook/onprem", body, http.Header{onPremSecretHeader: {"wrong"}})
		}
		// A signed non-JSON body and an oversized one, both full of ids.
		e.post([]byte("16315551234 ARAkLkA8rmlFeiCktEJQ not json"), testAppSecret)
		e.post(bytes.Repeat([]byte("16315551234"), 200_000), testAppSecret)
		for _, ex := range expectations(t) {
			for _, tc := range ex.Touches {
				path := "/v1/contexts/" + tc.Channel + "/" + tc.BusinessID + "/" + tc.UserID
				e.admin(http.MethodGet, path, bearer)
				e.admin(http.MethodGet, path, http.Header{"Authorization": {"Bearer " + tc.UserID}})
				e.admin(http.MethodGet, "/v1/contexts/telegram/"+tc.BusinessID+"/"+tc.UserID, bearer)
			}
		}
		for _, tok := range []string{testVerifyToken, "16315551234"} {
			q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {tok}, "hub.challenge": {"6789012345678901"}}
			e.do(http.MethodGet, "/webhook?"+q.Encode(), nil, nil)
		}
		e.do(http.MethodGet, "/readyz", nil, nil)
	}
	exercise()
	// Again with the store failing: errors are logged then.
	e.mr.SetError("ERR injected failure")
	exercise()
	e.mr.SetError("")

	entries := observed.All()
	if len(entries) == 0 || !strings.Contains(text.String(), "store unavailable") {
		t.Fatalf("expected logs of the failure paths; got %d entries", len(entries))
	}
	forbidden := append(personalData(t), testAppSecret, testOldSecret, testVerifyToken, testAdminToken, testOnPremSecret)
	for _, entry := range entries {
		rendered := entry.Message + " " + entry.LoggerName + " " + fmt.Sprint(entry.ContextMap())
		for _, s := range forbidden {
			if strings.Contains(rendered, s) {
				t.Errorf("log entry %q contains %q: %s", entry.Message, s, rendered)
			}
		}
	}
	for _, s := range forbidden {
		if strings.Contains(text.String(), s) {
			t.Errorf("JSON log output contains %q", s)
		}
	}
}

// Metric labels carry no ids either.
func TestMetricsCarryNoPersonalData(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	for _, name := range fixtureNames(t) {
		e.post(fixture(t, name), testAppSecret)
	}
	e.post([]byte("x"), webhook.SignatureHeader)
	out := e.admin(http.MethodGet, "/metrics", bearer()).Body.String()
	for _, s := range personalData(t) {
		if strings.Contains(out, s) {
			t.Errorf("/metrics contains %q", s)
		}
	}
}
