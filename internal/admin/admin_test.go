package admin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
)

func newTestServer(t *testing.T, token string) *Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total", Help: "A counter."}))
	s := New(Config{Token: token}, zaptest.NewLogger(t), reg)
	s.API().GET("/v1/things/:id", func(c echo.Context) error { return c.String(http.StatusOK, "thing") })
	s.API().GET("/v1/broken", func(echo.Context) error {
		return &Error{Status: http.StatusServiceUnavailable, Message: "store unavailable"}
	})
	s.Echo().POST("/v1/intake", func(c echo.Context) error { return c.NoContent(http.StatusAccepted) }, RequireBearer("", "in-1", "in-2"))
	return s
}

// clients gives each request of get an address of its own, so that the
// failed-authentication limit (guard_test.go) does not mix into these tests.
var clients atomic.Int64

func get(t *testing.T, h http.Handler, method, path, auth string) *httptest.ResponseRecorder {
	t.Helper()
	n := clients.Add(1)
	return from(t, h, "198.18."+strconv.FormatInt(n%250, 10)+"."+strconv.FormatInt(n/250%250, 10)+":4711", method, path, auth, nil)
}

func TestAuth(t *testing.T) {
	s := newTestServer(t, "adm-token")
	tests := []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/v1/things/1", "Bearer adm-token", 200},
		{"GET", "/v1/things/1", "bearer adm-token", 200},
		{"GET", "/v1/things/1", "", 401},
		{"GET", "/v1/things/1", "Bearer adm-token2", 401},
		{"GET", "/v1/things/1", "Basic adm-token", 401},
		{"GET", "/v1/things/1", "adm-token", 401},
		{"GET", "/v1/broken", "Bearer adm-token", 503},
		{"GET", "/metrics", "Bearer adm-token", 200},
		{"GET", "/metrics", "", 401},
		// Routes with their own tokens: the admin token does not open them.
		{"POST", "/v1/intake", "Bearer in-2", 202},
		{"POST", "/v1/intake", "Bearer in-1", 202},
		{"POST", "/v1/intake", "Bearer adm-token", 401},
		{"POST", "/v1/intake", "Bearer ", 401},
		// Unknown paths tell nothing without the token.
		{"GET", "/v1/nothing", "", 401},
		{"GET", "/v1/nothing", "Bearer adm-token", 404},
	}
	for _, tt := range tests {
		rec := get(t, s.Handler(), tt.method, tt.path, tt.auth)
		if rec.Code != tt.want {
			t.Errorf("%s %s with %q = %d (%s); want %d", tt.method, tt.path, tt.auth, rec.Code, rec.Body, tt.want)
		}
		if tt.want >= 400 && !strings.Contains(rec.Body.String(), `"error":`) {
			t.Errorf("%s %s: error body %q is not {\"error\": ...}", tt.method, tt.path, rec.Body)
		}
	}
	if rec := get(t, s.Handler(), "GET", "/metrics", "Bearer adm-token"); !strings.Contains(rec.Body.String(), "test_total 0") {
		t.Errorf("/metrics lacks the registry's counter:\n%s", rec.Body)
	}
}

// With ADMIN_TOKEN unset the admin API is off: 404 whatever the request
// carries; /metrics stays, without a token.
func TestDisabled(t *testing.T) {
	s := newTestServer(t, "")
	for _, auth := range []string{"", "Bearer ", "Bearer adm-token"} {
		rec := get(t, s.Handler(), "GET", "/v1/things/1", auth)
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), ErrDisabled.Message) {
			t.Errorf("GET /v1/things/1 with %q and no ADMIN_TOKEN = %d %s; want 404 %q", auth, rec.Code, rec.Body, ErrDisabled.Message)
		}
	}
	if rec := get(t, s.Handler(), "GET", "/metrics", ""); rec.Code != http.StatusOK {
		t.Errorf("GET /metrics without ADMIN_TOKEN = %d; want 200", rec.Code)
	}
}

func TestServeAndShutdown(t *testing.T) {
	s := newTestServer(t, "adm-token")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/v1/things/1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET over TCP without the token = %d; want 401", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Serve after cancel = %v; want nil", err)
	}
}
