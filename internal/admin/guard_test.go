package admin

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
)

// clock is a settable time for the guard.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func from(t *testing.T, h http.Handler, addr, method, path, auth string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequestWithContext(t.Context(), method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequestWithContext(t.Context(), method, path, nil)
	}
	req.RemoteAddr = addr
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestGuard: after GuardMaxFailures wrong tokens from one address within
// GuardWindow, that address's tokens are refused with 429 and Retry-After,
// the right one too, on the API and on the console's login alike; other
// addresses and requests without credentials are not affected; the
// window's end lifts it.
func TestGuard(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)}
	s := New(Config{Token: "adm-token", Now: clk.now}, zaptest.NewLogger(t), prometheus.NewRegistry())
	s.API().GET("/v1/things/:id", func(c echo.Context) error { return c.String(http.StatusOK, "thing") })
	// The console's login answers 401 to a wrong token, as console.login does.
	s.Echo().POST("/console/login", func(c echo.Context) error {
		if c.FormValue("token") != "adm-token" {
			return c.String(http.StatusUnauthorized, "not this server's token")
		}
		return c.Redirect(http.StatusSeeOther, "/console/")
	})
	s.Echo().GET("/console/", func(c echo.Context) error { return c.String(http.StatusOK, "overview") })
	h := s.Handler()
	const attacker, operator = "203.0.113.9:50000", "203.0.113.10:50001"

	for i := range GuardMaxFailures {
		if rec := from(t, h, attacker, "GET", "/v1/things/1", "Bearer guess", nil); rec.Code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d = %d; want 401", i+1, rec.Code)
		}
		clk.add(time.Second)
	}
	rec := from(t, h, attacker, "GET", "/v1/things/1", "Bearer adm-token", nil)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "50" ||
		!strings.Contains(rec.Body.String(), "try again in 50s") {
		t.Fatalf("right token after %d wrong ones = %d %q (Retry-After %q); want 429, try again in 50s",
			GuardMaxFailures, rec.Code, rec.Body.String(), rec.Header().Get("Retry-After"))
	}
	if strings.Contains(rec.Body.String(), "adm-token") {
		t.Fatal("the answer holds the token")
	}
	if rec := from(t, h, attacker, "POST", "/console/login", "", url.Values{"token": {"adm-token"}}); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("console login from a blocked address = %d; want 429", rec.Code)
	}
	// Without credentials the request goes on to its own check.
	if rec := from(t, h, attacker, "GET", "/console/", "", nil); rec.Code != http.StatusOK {
		t.Fatalf("a request without credentials from a blocked address = %d; want it answered (200)", rec.Code)
	}
	if rec := from(t, h, operator, "GET", "/v1/things/1", "Bearer adm-token", nil); rec.Code != http.StatusOK {
		t.Fatalf("another address = %d; want 200", rec.Code)
	}
	// Requests without credentials are answered 401 and are no guesses.
	for range 2 * GuardMaxFailures {
		if rec := from(t, h, operator, "GET", "/v1/things/1", "", nil); rec.Code != http.StatusUnauthorized {
			t.Fatalf("no token = %d; want 401", rec.Code)
		}
	}
	if rec := from(t, h, operator, "GET", "/v1/things/1", "Bearer adm-token", nil); rec.Code != http.StatusOK {
		t.Fatalf("after requests without a token = %d; want 200", rec.Code)
	}

	clk.add(GuardWindow)
	if rec := from(t, h, attacker, "GET", "/v1/things/1", "Bearer adm-token", nil); rec.Code != http.StatusOK {
		t.Fatalf("after the window = %d; want 200", rec.Code)
	}

	// Failed console logins count as well.
	for range GuardMaxFailures {
		from(t, h, operator, "POST", "/console/login", "", url.Values{"token": {"typo"}})
	}
	if rec := from(t, h, operator, "POST", "/console/login", "", url.Values{"token": {"adm-token"}}); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("login after %d failed logins = %d; want 429", GuardMaxFailures, rec.Code)
	}
	if rec := from(t, h, operator, "GET", "/metrics", "Bearer adm-token", nil); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("/metrics from the same address = %d; want 429", rec.Code)
	}
}

// TestGuardBounded: the addresses tracked stay under guardMaxClients;
// windows that ended make room.
func TestGuardBounded(t *testing.T) {
	clk := &clock{t: time.Unix(0, 0)}
	g := newGuard(zaptest.NewLogger(t), clk.now)
	for i := range guardMaxClients + 50 {
		g.failed("a" + string(rune(i)))
	}
	if n := len(g.clients); n != guardMaxClients {
		t.Fatalf("%d addresses tracked; want %d", n, guardMaxClients)
	}
	clk.add(GuardWindow)
	g.failed("late")
	if n := len(g.clients); n != 1 {
		t.Fatalf("%d addresses tracked after the windows ended; want 1", n)
	}
}
