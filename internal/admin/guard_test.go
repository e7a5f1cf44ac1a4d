package admin

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
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
// the right one too, on the API and on a login form that checks with Check
// alike; other addresses, requests without a token, in-process requests
// and the other realm are not affected; the window's end lifts it.
func TestGuard(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)}
	s := New(Config{Token: "adm-token", Now: clk.now}, zaptest.NewLogger(t), prometheus.NewRegistry())
	s.API().GET("/v1/things/:id", func(c echo.Context) error { return c.String(http.StatusOK, "thing") })
	// A login form, as the console's: its token is checked with Check.
	s.Echo().POST("/console/login", func(c echo.Context) error {
		token := c.FormValue("token")
		ok, err := Check(c.Request(), RealmAdmin, token, func() bool { return token == "adm-token" })
		if err != nil {
			return err
		}
		if !ok {
			return c.String(http.StatusUnauthorized, "not this server's token")
		}
		return c.Redirect(http.StatusSeeOther, "/console/")
	})
	// An intake, with tokens of its own realm.
	s.Echo().POST("/v1/conversions", func(c echo.Context) error {
		auth := c.Request().Header.Get("Authorization")
		ok, err := Check(c.Request(), RealmIntake, auth, func() bool { return auth == "Bearer in-token" })
		if err != nil {
			return err
		}
		if !ok {
			return c.NoContent(http.StatusUnauthorized)
		}
		return c.NoContent(http.StatusAccepted)
	})
	h := s.Handler()
	const attacker, operator, producer = "203.0.113.9:50000", "203.0.113.10:50001", "203.0.113.11:50002"

	// The same wrong token again and again is one guess: a client retrying
	// a stale token does not block its address.
	for range 3 * GuardMaxFailures {
		if rec := from(t, h, attacker, "GET", "/v1/things/1", "Bearer stale", nil); rec.Code != http.StatusUnauthorized {
			t.Fatalf("a stale token = %d; want 401", rec.Code)
		}
	}
	if rec := from(t, h, attacker, "GET", "/v1/things/1", "Bearer adm-token", nil); rec.Code != http.StatusOK {
		t.Fatalf("after one stale token retried = %d; want 200", rec.Code)
	}
	for i := range GuardMaxFailures - 1 { // the stale one was the first
		if rec := from(t, h, attacker, "GET", "/v1/things/1", "Bearer guess-"+strconv.Itoa(i), nil); rec.Code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d = %d; want 401", i+2, rec.Code)
		}
		clk.add(time.Second)
	}
	clk.add(time.Second)
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
		t.Fatalf("login from a blocked address = %d; want 429", rec.Code)
	}
	if rec := from(t, h, attacker, "POST", "/v1/conversions", "Bearer in-token", nil); rec.Code != http.StatusAccepted {
		t.Fatalf("the intake's token from an address blocked for admin tokens = %d; want 202 (realms apart)", rec.Code)
	}
	// The process's own requests to its handler (the console's API calls)
	// carry no client's address.
	req := httptest.NewRequestWithContext(InProcess(t.Context()), "GET", "/v1/things/1", nil)
	req.RemoteAddr, req.Header = attacker, http.Header{"Authorization": {"Bearer adm-token"}}
	in := httptest.NewRecorder()
	h.ServeHTTP(in, req)
	if in.Code != http.StatusOK {
		t.Fatalf("in-process request from a blocked address = %d; want 200", in.Code)
	}
	if rec := from(t, h, operator, "GET", "/v1/things/1", "Bearer adm-token", nil); rec.Code != http.StatusOK {
		t.Fatalf("another address = %d; want 200", rec.Code)
	}
	// Requests without a token are answered 401 and are no guesses.
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

	// Wrong logins count as well.
	for i := range GuardMaxFailures {
		from(t, h, operator, "POST", "/console/login", "", url.Values{"token": {"typo-" + strconv.Itoa(i)}})
	}
	if rec := from(t, h, operator, "POST", "/console/login", "", url.Values{"token": {"adm-token"}}); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("login after %d wrong ones = %d; want 429", GuardMaxFailures, rec.Code)
	}
	if rec := from(t, h, operator, "GET", "/metrics", "Bearer adm-token", nil); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("/metrics from the same address = %d; want 429", rec.Code)
	}

	// Concurrent guesses are checked one after the other: of 100 at once,
	// GuardMaxFailures are compared and the rest refused.
	codes := make(chan int, 100)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			codes <- from(t, h, producer, "POST", "/v1/conversions", "Bearer guess-"+strconv.Itoa(i), nil).Code
		})
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[http.StatusUnauthorized] != GuardMaxFailures || n[http.StatusTooManyRequests] != 100-GuardMaxFailures {
		t.Fatalf("100 concurrent wrong tokens: %v; want %d answered 401 and the rest 429", n, GuardMaxFailures)
	}
}

// TestGuardBounded: the addresses tracked in full stay under
// guardMaxClients; past it, new addresses are counted in the overflow
// tier, each under the same limit for its own wrong tokens (not no limit,
// and not a limit shared with others); windows that ended make room.
func TestGuardBounded(t *testing.T) {
	clk := &clock{t: time.Unix(0, 0)}
	g := NewGuard(zaptest.NewLogger(t), clk.now)
	wrong := func() bool { return false }
	for i := range guardMaxClients {
		g.check(RealmAdmin, "a"+strconv.Itoa(i), "guess", wrong)
	}
	if n := len(g.clients); n != guardMaxClients {
		t.Fatalf("%d addresses tracked; want %d", n, guardMaxClients)
	}
	for i := range GuardMaxFailures {
		if _, wait := g.check(RealmAdmin, "new", "guess-"+strconv.Itoa(i), wrong); wait != 0 {
			t.Fatalf("overflow guess %d refused", i+1)
		}
	}
	compared := false
	if _, wait := g.check(RealmAdmin, "new", "guess-x", func() bool { compared = true; return false }); wait == 0 || compared {
		t.Fatalf("an overflow address after %d wrong tokens of its own: wait %v, compared %v; want refused", GuardMaxFailures, wait, compared)
	}
	if ok, wait := g.check(RealmAdmin, "newest", "right", func() bool { return true }); !ok || wait != 0 {
		t.Fatalf("another overflow address with the right token: %v, wait %v; want accepted", ok, wait)
	}
	if n := len(g.clients); n != guardMaxClients {
		t.Fatalf("%d entries; want %d", n, guardMaxClients)
	}
	clk.add(GuardWindow + time.Second)
	g.check(RealmAdmin, "late", "guess", wrong)
	if n := len(g.clients); n != 1 {
		t.Fatalf("%d addresses tracked after the windows ended; want 1", n)
	}
	if _, wait := g.check(RealmAdmin, "new", "guess-y", wrong); wait != 0 {
		t.Fatal("an overflow address still refused after its window ended")
	}
}

// TestGuardOverflowNeverLocksOutTheRightToken: after wrong tokens from
// 10,030 addresses (the full table and 30 beyond it), the right ADMIN_TOKEN
// still gets 200 from a new address and from an untouched Prometheus, on
// the API and /metrics; only addresses that themselves sent
// GuardMaxFailures wrong ones wait.
func TestGuardOverflowNeverLocksOutTheRightToken(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)}
	s := New(Config{Token: "adm-token", Now: clk.now}, zaptest.NewLogger(t), prometheus.NewRegistry())
	s.API().GET("/v1/things/:id", func(c echo.Context) error { return c.String(http.StatusOK, "thing") })
	h := s.Handler()
	addr := func(i int) string {
		return "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + ":4000"
	}
	const n = guardMaxClients + 30
	for i := range n {
		if rec := from(t, h, addr(i), "GET", "/v1/things/1", "Bearer guess", nil); rec.Code != http.StatusUnauthorized {
			t.Fatalf("wrong token from address %d = %d; want 401", i, rec.Code)
		}
	}
	// One overflow address guesses until it is blocked.
	last := addr(n - 1)
	for i := range GuardMaxFailures {
		from(t, h, last, "GET", "/v1/things/1", "Bearer guess-"+strconv.Itoa(i), nil)
	}
	for _, a := range []string{"192.0.2.1:9090", "192.0.2.2:5000", addr(n - 2)} {
		for _, path := range []string{"/v1/things/1", "/metrics"} {
			if rec := from(t, h, a, "GET", path, "Bearer adm-token", nil); rec.Code != http.StatusOK {
				t.Fatalf("right token from %s on %s after %d addresses sent wrong ones = %d %s; want 200", a, path, n, rec.Code, rec.Body)
			}
		}
	}
	if rec := from(t, h, last, "GET", "/v1/things/1", "Bearer adm-token", nil); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("right token from the overflow address that guessed %d times = %d; want 429 with Retry-After", GuardMaxFailures+1, rec.Code)
	}
}

func TestClientOf(t *testing.T) {
	for addr, want := range map[string]string{
		"203.0.113.9:50000":          "203.0.113.9",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ff::1]:443":   "2001:db8:1:2::/64",
		"not an address":             "not an address",
	} {
		if got := clientOf(&http.Request{RemoteAddr: addr}); got != want {
			t.Errorf("clientOf(%q) = %q; want %q", addr, got, want)
		}
	}
}
