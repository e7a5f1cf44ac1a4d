package ingest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// Compile-time check: the store is a recorder.
var _ recorder = (*attribution.Store)(nil)

// Test secrets and ids. The WABA id is the one of the WhatsApp fixtures.
const (
	testAppSecret    = "test-app-secret-0123456789"
	testOldSecret    = "test-old-app-secret-rotated"
	testVerifyToken  = "test-verify-token-abcdef"
	testAdminToken   = "test-admin-token-ghijkl"
	testOnPremSecret = "test-onprem-secret-mnopqr"
	testOnPremWABA   = "102290129340398"
	fixtureDir       = "../../pkg/webhook/testdata"
)

// testConfig is a complete configuration with every feature on.
func testConfig() Config {
	return Config{
		AppSecrets:   []string{testOldSecret, testAppSecret},
		VerifyToken:  testVerifyToken,
		AdminToken:   testAdminToken,
		OnPremSecret: testOnPremSecret,
		OnPremWABAID: testOnPremWABA,
	}
}

// testEnv is a Server over a miniredis-backed store.
type testEnv struct {
	t     *testing.T
	srv   *Server
	store *attribution.Store
	mr    *miniredis.Miniredis
	reg   *prometheus.Registry
	adm   *admin.Server // the admin listener, with ingest's routes
}

// newTestEnv builds a Server with cfg (testConfig when nil) and log
// (a zaptest logger when nil).
func newTestEnv(t *testing.T, cfg *Config, log *zap.Logger) *testEnv {
	t.Helper()
	store, mr := newMiniStore(t)
	if cfg == nil {
		c := testConfig()
		cfg = &c
	}
	if log == nil {
		log = zaptest.NewLogger(t)
	}
	reg := prometheus.NewRegistry()
	srv, err := New(*cfg, Deps{Logger: log, Store: store, Registerer: reg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	adm := admin.New(admin.Config{Token: cfg.AdminToken}, log, reg)
	srv.AdminRoutes(adm.API())
	return &testEnv{t: t, srv: srv, store: store, mr: mr, reg: reg, adm: adm}
}

// newMiniStore returns a store over a fresh miniredis.
func newMiniStore(t *testing.T) (*attribution.Store, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb, err := attribution.NewClient("redis://" + mr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return attribution.NewStore(rdb, 0), mr
}

// do sends a request to the webhook listener's handler and returns the
// recorded response.
func (e *testEnv) do(method, target string, body []byte, header http.Header) *httptest.ResponseRecorder {
	e.t.Helper()
	return serve(e.t, e.srv.Handler(), method, target, body, header)
}

// admin sends a request to the admin listener's handler.
func (e *testEnv) admin(method, target string, header http.Header) *httptest.ResponseRecorder {
	e.t.Helper()
	return serve(e.t, e.adm.Handler(), method, target, nil, header)
}

func serve(t *testing.T, h http.Handler, method, target string, body []byte, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, target, bytes.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// bearer is the admin token's Authorization header.
func bearer() http.Header { return http.Header{"Authorization": {"Bearer " + testAdminToken}} }

// post sends body to /webhook signed with secret (unsigned when empty).
func (e *testEnv) post(body []byte, secret string) *httptest.ResponseRecorder {
	e.t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if secret != "" {
		h.Set(webhook.SignatureHeader, webhook.Sign(body, []byte(secret)))
	}
	return e.do(http.MethodPost, "/webhook", body, h)
}

// count returns the value of a counter.
func count(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// webhooks returns ingest_webhooks_total{channel,outcome}.
func (e *testEnv) webhooks(ch channel, out outcome) float64 {
	return count(e.t, e.srv.m.webhooks[ch][out])
}

// fixture returns the bytes of a webhook fixture.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureNames lists the webhook fixtures (every .json but expected.json).
func fixtureNames(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures in %s: %v", fixtureDir, err)
	}
	var names []string
	for _, p := range paths {
		if n := filepath.Base(p); n != "expected.json" {
			names = append(names, n)
		}
	}
	return names
}

// expectation is one entry of expected.json.
type expectation struct {
	File    string `json:"file"`
	Touches []struct {
		Channel    string `json:"channel"`
		BusinessID string `json:"business_id"`
		UserID     string `json:"user_id"`
		BSUID      string `json:"bsuid"`
		Parent     string `json:"parent_bsuid"`
		From       string `json:"from"`
		ClickID    string `json:"ctwa_clid"`
		AdID       string `json:"ad_id"`
		Time       int64  `json:"time"`
	} `json:"touches"`
}

func expectations(t *testing.T) []expectation {
	t.Helper()
	var out []expectation
	if err := json.Unmarshal(fixture(t, "expected.json"), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHealthAndMetricsEndpoints(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		if rec := e.do(http.MethodGet, path, nil, nil); rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d; want 200", path, rec.Code)
		}
	}
	body := e.admin(http.MethodGet, "/metrics", bearer()).Body.String()
	for _, name := range []string{"ingest_webhooks_total", "ingest_touches_total", "ingest_signature_failures_total", "ingest_store_duration_seconds", "ingest_http_request_duration_seconds"} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	e.mr.Close() // the store goes away: not ready, but alive
	if rec := e.do(http.MethodGet, "/readyz", nil, nil); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with store down = %d; want 503", rec.Code)
	}
	if rec := e.do(http.MethodGet, "/healthz", nil, nil); rec.Code != http.StatusOK {
		t.Errorf("GET /healthz with store down = %d; want 200", rec.Code)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	if rec := e.do(http.MethodGet, "/nope", nil, nil); rec.Code != http.StatusNotFound {
		t.Errorf("GET /nope = %d; want 404", rec.Code)
	}
	if rec := e.do(http.MethodPut, "/webhook", nil, nil); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT /webhook = %d; want 405", rec.Code)
	}
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	cfg := testConfig()
	cfg.AppSecrets = nil
	if _, err := New(cfg, Deps{Logger: zap.NewNop(), Store: e.store}); err == nil || !strings.Contains(err.Error(), "META_APP_SECRET") {
		t.Errorf("New without app secret: err = %v; want one naming META_APP_SECRET", err)
	}
	if _, err := New(testConfig(), Deps{Logger: zap.NewNop()}); err == nil {
		t.Error("New without a store: err = nil; want an error")
	}
}
