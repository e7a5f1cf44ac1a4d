package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConsoleOffWithoutToken(t *testing.T) {
	c := New(Config{}, newFakeAPI(""))
	for _, p := range []string{"/console/", "/console/login", "/console/static/console.js"} {
		if w := c.serve(t, req{method: "GET", path: p}); w.Code != http.StatusNotFound {
			t.Errorf("GET %s without ADMIN_TOKEN = %d; want 404", p, w.Code)
		}
	}
	w := c.serve(t, req{method: "POST", path: "/console/login", form: url.Values{"token": {""}}})
	if w.Code != http.StatusNotFound {
		t.Errorf("POST /console/login with an empty token while off = %d; want 404", w.Code)
	}
}

func TestLogin(t *testing.T) {
	c, _ := newTestConsole(t)
	if w := c.serve(t, req{method: "GET", path: "/console/"}); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/login" {
		t.Errorf("GET /console/ logged out = %d to %q; want 303 to /console/login", w.Code, w.Header().Get("Location"))
	}
	w := c.serve(t, req{method: "POST", path: "/console/login", form: url.Values{"token": {"wrong"}}})
	if w.Code != http.StatusUnauthorized || len(w.Result().Cookies()) != 0 || !strings.Contains(w.Body.String(), "not this server") {
		t.Errorf("wrong token: %d, cookies %v; want 401, none", w.Code, w.Result().Cookies())
	}
	w = c.serve(t, req{method: "POST", path: "/console/login", form: url.Values{"token": {testToken}}, origin: "http://evil.test"})
	if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
		t.Errorf("login from another origin: %d; want 403 and no cookie", w.Code)
	}

	w = c.serve(t, req{method: "POST", path: "/console/login", form: url.Values{"token": {testToken}}, origin: "http://admin.test"})
	cks := w.Result().Cookies()
	if w.Code != http.StatusSeeOther || len(cks) != 1 {
		t.Fatalf("login: %d, cookies %v; want 303 and one cookie", w.Code, cks)
	}
	ck := cks[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console" || ck.Secure || ck.MaxAge <= 0 {
		t.Errorf("cookie %+v; want HttpOnly, SameSite=Strict, Path=/console, not Secure over plain HTTP", ck)
	}
	if strings.Contains(ck.Value, testToken) {
		t.Errorf("the cookie carries ADMIN_TOKEN")
	}
	if w := c.serve(t, req{method: "GET", path: "/console/", cookie: ck.Value}); w.Code != http.StatusOK {
		t.Errorf("overview logged in = %d; want 200", w.Code)
	}

	// Over TLS the cookie is Secure.
	r := httptest.NewRequestWithContext(t.Context(), "POST", "https://admin.test/console/login", strings.NewReader("token="+testToken))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "https://admin.test")
	tw := httptest.NewRecorder()
	c.ServeHTTP(tw, r)
	if cks := tw.Result().Cookies(); tw.Code != http.StatusSeeOther || len(cks) != 1 || !cks[0].Secure {
		t.Errorf("login over TLS: %d %v; want a Secure cookie", tw.Code, cks)
	}
	// Behind a proxy that ends TLS: the Origin is https, the request http.
	r = httptest.NewRequestWithContext(t.Context(), "POST", "http://admin.test/console/login", strings.NewReader("token="+testToken))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "https://admin.test")
	r.Header.Set("X-Forwarded-Proto", "https")
	tw = httptest.NewRecorder()
	c.ServeHTTP(tw, r)
	if cks := tw.Result().Cookies(); tw.Code != http.StatusSeeOther || len(cks) != 1 || !cks[0].Secure {
		t.Errorf("login behind a TLS proxy: %d %v; want a Secure cookie", tw.Code, cks)
	}

	// Logout clears the cookie.
	// Its form token belongs to its session only.
	ck2, csrf := login(t, c)
	if w := c.serve(t, req{method: "POST", path: "/console/logout", form: url.Values{"csrf": {csrf}}, cookie: ck.Value}); w.Code != http.StatusForbidden {
		t.Errorf("logout with another session's form token = %d; want 403", w.Code)
	}
	w = c.serve(t, req{method: "POST", path: "/console/logout", form: url.Values{"csrf": {csrf}}, cookie: ck2})
	if cks := w.Result().Cookies(); w.Code != http.StatusSeeOther || len(cks) != 1 || cks[0].MaxAge >= 0 {
		t.Errorf("logout: %d %v; want 303 and the cookie removed", w.Code, cks)
	}
}

func TestSessionCookie(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	k := newKeys(testToken)
	_, v := k.newSession(now)
	tests := []struct {
		name  string
		keys  keys
		value string
		at    time.Time
		want  bool
	}{
		{"fresh", k, v, now.Add(time.Hour), true},
		{"expired", k, v, now.Add(SessionTTL + time.Second), false},
		{"another ADMIN_TOKEN", newKeys("rotated"), v, now, false},
		{"tampered time", k, strings.Replace(v, ".", ".9", 1), now, false},
		{"garbage", k, "abc", now, false},
	}
	for _, tt := range tests {
		if _, ok := tt.keys.parseSession(tt.value, tt.at); ok != tt.want {
			t.Errorf("%s: parseSession = %v; want %v", tt.name, ok, tt.want)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	c, _ := newTestConsole(t)
	ck, _ := login(t, c)
	for _, p := range []string{"/console/login", "/console/", "/console/businesses", "/console/dead-letters", "/console/events", "/console/static/console.js"} {
		w := c.serve(t, req{method: "GET", path: p, cookie: ck})
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("GET %s: CSP %q; want scripts from self only", p, csp)
		}
		if w.Header().Get("X-Frame-Options") != "DENY" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: headers %v", p, w.Header())
		}
		if strings.HasSuffix(p, ".js") {
			continue
		}
		if body := w.Body.String(); strings.Contains(body, "<script>") || strings.Contains(body, "onclick") || strings.Contains(body, "style=") {
			t.Errorf("GET %s has inline script or style", p)
		}
	}
}

func TestRedriveCSRF(t *testing.T) {
	c, f := newTestConsole(t)
	ck, csrf := login(t, c)
	form := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "seq": {"42"}, "mode": {"selected"}, "back": {"/console/businesses/1001"}}
	}
	tests := []struct {
		name         string
		cookie, csrf string
		origin       string
		want         int
	}{
		{"no session", "", csrf, "http://admin.test", http.StatusUnauthorized},
		{"no csrf token", ck, "", "http://admin.test", http.StatusForbidden},
		{"another session's token", ck, "x" + csrf[1:], "http://admin.test", http.StatusForbidden},
		{"another origin", ck, csrf, "http://evil.test", http.StatusForbidden},
		{"opaque origin", ck, csrf, "null", http.StatusForbidden},
		{"another port", ck, csrf, "http://admin.test:8443", http.StatusForbidden},
		{"not a web origin", ck, csrf, "file://admin.test", http.StatusForbidden},
	}
	for _, tt := range tests {
		w := c.serve(t, req{method: "POST", path: "/console/dead-letters/redrive", form: form(tt.csrf), cookie: tt.cookie, origin: tt.origin})
		if w.Code != tt.want {
			t.Errorf("%s: redrive = %d; want %d", tt.name, w.Code, tt.want)
		}
	}
	if len(f.redrv) != 0 {
		t.Fatalf("a refused form reached the API: %v", f.redrv)
	}

	w := c.serve(t, req{method: "POST", path: "/console/dead-letters/redrive", form: form(csrf), cookie: ck, origin: "http://admin.test"})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Redriven 1 of 1") || !strings.Contains(w.Body.String(), `href="/console/businesses/1001"`) {
		t.Fatalf("redrive = %d:\n%s", w.Code, w.Body)
	}
	if len(f.redrv) != 1 || f.redrv[0]["seqs"] == nil || f.redrv[0]["dry_run"] != false {
		t.Errorf("redrive body %v; want seqs [42], dry_run false", f.redrv)
	}
	w = c.serve(t, req{method: "GET", path: "/console/events?business=1001&event_id=ord-1", cookie: ck})
	if !strings.Contains(w.Body.String(), `id="state">sent<`) || !strings.Contains(w.Body.String(), "AbCfake") {
		t.Errorf("after the redrive the trail is not sent:\n%s", w.Body)
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/console/businesses/1": "/console/businesses/1", "//evil.test": "/console/dead-letters",
		"https://evil.test/console/": "/console/dead-letters", "/console/\r\nx": "/console/dead-letters", "/other": "/console/dead-letters",
	} {
		if got := localPath(in, "/console/dead-letters"); got != want {
			t.Errorf("localPath(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestLogoutRevokesSession: after a logout, the session's cookie (kept by
// another tab, or stolen) no longer opens a page or sends a form, though
// it has not expired; another session goes on working; the revocation is
// forgotten once the cookie would have expired anyway.
func TestLogoutRevokesSession(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clk := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFakeAPI(testToken)
	c := New(Config{Token: testToken, Now: clk}, f)
	ck, csrf := login(t, c)
	other, _ := login(t, c)
	if w := c.serve(t, req{method: "POST", path: "/console/logout", form: url.Values{"csrf": {csrf}}, cookie: ck}); w.Code != http.StatusSeeOther {
		t.Fatalf("logout = %d; want 303", w.Code)
	}
	if w := c.serve(t, req{method: "GET", path: "/console/", cookie: ck}); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/login" {
		t.Errorf("a page with the logged-out cookie = %d %q; want 303 to the login", w.Code, w.Header().Get("Location"))
	}
	form := url.Values{"csrf": {csrf}, "seq": {"42"}}
	if w := c.serve(t, req{method: "POST", path: "/console/dead-letters/redrive", form: form, cookie: ck}); w.Code != http.StatusUnauthorized {
		t.Errorf("a form with the logged-out cookie = %d; want 401", w.Code)
	}
	if w := c.serve(t, req{method: "GET", path: "/console/", cookie: other}); w.Code != http.StatusOK {
		t.Errorf("another session after the logout = %d; want 200", w.Code)
	}
	mu.Lock()
	now = now.Add(SessionTTL + time.Minute)
	mu.Unlock()
	c.revoked.add(session{id: "later", expires: clk().Add(SessionTTL)}, clk())
	if c.revoked.has("") || len(c.revoked.ids) != 1 {
		t.Errorf("revocations kept past their cookie's expiry: %d entries; want 1", len(c.revoked.ids))
	}
}
