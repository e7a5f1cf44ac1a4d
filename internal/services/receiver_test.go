package services

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/ctmpipe/ctmpipe/internal/ingest"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

const testAppSecret = "test-app-secret-0123456789"

// receiver is the webhook receiver over a miniredis store, wired with deps
// as cmd/ingest wires it with the services.
type receiver struct {
	t   *testing.T
	srv *ingest.Server
	mr  *miniredis.Miniredis
}

func newReceiver(t *testing.T, deps ingest.Deps) *receiver {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb, err := attribution.NewClient("redis://" + mr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	deps.Logger, deps.Store, deps.Registerer = zaptest.NewLogger(t), attribution.NewStore(rdb, 0), prometheus.NewRegistry()
	srv, err := ingest.New(ingest.Config{AppSecrets: []string{testAppSecret}, VerifyToken: "test-verify-token"}, deps)
	if err != nil {
		t.Fatal(err)
	}
	return &receiver{t: t, srv: srv, mr: mr}
}

// post sends body to /webhook signed with secret.
func (r *receiver) post(body []byte, secret string) *httptest.ResponseRecorder {
	r.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, []byte(secret)))
	rec := httptest.NewRecorder()
	r.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// fixture is one of pkg/webhook's webhook bodies.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../pkg/webhook/testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
