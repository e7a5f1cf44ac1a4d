package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

const testToken = "adm-token-console-5f1"

func newTestConsole(t *testing.T) (*Console, *fakeAPI) {
	t.Helper()
	f := newFakeAPI(testToken)
	return New(Config{Token: testToken}, f), f
}

// req is one browser request to the console.
type req struct {
	method, path string
	form         url.Values
	cookie       string
	origin       string
}

func (c *Console) serve(t *testing.T, rq req) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if rq.form != nil {
		body = strings.NewReader(rq.form.Encode())
	}
	r := httptest.NewRequestWithContext(t.Context(), rq.method, "http://admin.test"+rq.path, body)
	if rq.form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if rq.cookie != "" {
		r.AddCookie(&http.Cookie{Name: cookieName, Value: rq.cookie})
	}
	if rq.origin != "" {
		r.Header.Set("Origin", rq.origin)
	}
	w := httptest.NewRecorder()
	c.ServeHTTP(w, r)
	return w
}

// login logs in and returns the session cookie's value and the CSRF token.
func login(t *testing.T, c *Console) (string, string) {
	t.Helper()
	w := c.serve(t, req{method: "POST", path: "/console/login", form: url.Values{"token": {testToken}}, origin: "http://admin.test"})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("login = %d; want 303:\n%s", w.Code, w.Body)
	}
	var value string
	for _, ck := range w.Result().Cookies() {
		if ck.Name == cookieName {
			value = ck.Value
		}
	}
	s, ok := c.keys.parseSession(value, time.Now())
	if !ok {
		t.Fatalf("login set no valid session cookie: %q", value)
	}
	return value, s.csrf
}

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

func TestPages(t *testing.T) {
	c, f := newTestConsole(t)
	ck, _ := login(t, c)
	tests := []struct {
		path string
		want []string
	}{
		{"/console/", []string{"webhooks/s", "conversions/s", "Graph p99 ms", "dead_letter:rejected", "<polyline", "Last day", "480"}},
		{"/console/businesses", []string{`href="/console/businesses/1001"`, "2002", "Session has expired", "paused", "rejected 1"}},
		{"/console/businesses?q=2002", []string{"2002", "Session has expired"}},
		{"/console/businesses?q=9999", []string{"no business 9999"}},
		{"/console/businesses/2002", []string{`id="resume"`, "token, Meta code 190", "clicks stored"}},
		{"/console/businesses/1001", []string{"ord-1", `value="42"`, "Redrive selected"}},
		{"/console/events?business=1001&event_id=ord-1", []string{`id="state">dead_letter<`, "#42"}},
		{"/console/events?business=1001&event_id=nope", []string{"no trail for this event"}},
		{"/console/dead-letters?reason=rejected", []string{"ord-1", "Redrive all matching the filter"}},
		{"/console/dead-letters/42", []string{"…1234", "Redrive this dead letter"}},
	}
	for _, tt := range tests {
		w := c.serve(t, req{method: "GET", path: tt.path, cookie: ck})
		body := w.Body.String()
		if w.Code != http.StatusOK {
			t.Errorf("GET %s = %d; want 200:\n%s", tt.path, w.Code, body)
		}
		for _, s := range tt.want {
			if !strings.Contains(body, s) {
				t.Errorf("GET %s lacks %q", tt.path, s)
			}
		}
		// Meta's error text is escaped, never markup.
		if strings.Contains(body, "<script>alert") {
			t.Errorf("GET %s: unescaped text from the API", tt.path)
		}
	}
	calls := f.called()
	for _, want := range []string{"GET /v1/stats?window=1h", "GET /v1/stats?window=24h", "GET /v1/dead-letters?business=1001&limit=50",
		"GET /v1/dead-letters?limit=50&reason=rejected", "GET /v1/events/1001/ord-1", "GET /v1/dead-letters/42"} {
		if !slices.Contains(calls, want) {
			t.Errorf("the console never called %s; calls: %q", want, calls)
		}
	}
	for _, call := range calls {
		if strings.Contains(call, "reveal") {
			t.Errorf("the console asked for personal ids: %s", call)
		}
	}
	if w := c.serve(t, req{method: "GET", path: "/console/dead-letters/x1", cookie: ck}); w.Code != http.StatusBadRequest {
		t.Errorf("GET /console/dead-letters/x1 = %d; want 400", w.Code)
	}
	if w := c.serve(t, req{method: "GET", path: "/console/dead-letters/77", cookie: ck}); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "no dead letter 77") {
		t.Errorf("GET an unknown dead letter = %d; want 404 with the API's message", w.Code)
	}
}

// A pause recorded by an older sender ("1") has no time and no code.
func TestPauseWhyUnknown(t *testing.T) {
	c, f := newTestConsole(t)
	f.addBusiness("3003", "instagram", map[string]any{"since": "0001-01-01T00:00:00Z", "code": 0, "class": ""}, 0, 0, 0, nil)
	ck, _ := login(t, c)
	for path, want := range map[string]string{"/console/businesses?q=3003": "paused</span> (why unknown)",
		"/console/businesses/3003": "paused</span>: why unknown"} {
		w := c.serve(t, req{method: "GET", path: path, cookie: ck})
		if body := w.Body.String(); w.Code != http.StatusOK || !strings.Contains(body, want) || strings.Contains(body, "0001") {
			t.Errorf("GET %s = %d; want %q and no zero time:\n%s", path, w.Code, want, body)
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

func TestRedriveByFilterAndDryRun(t *testing.T) {
	c, f := newTestConsole(t)
	ck, csrf := login(t, c)
	post := func(v url.Values) *httptest.ResponseRecorder {
		v.Set("csrf", csrf)
		return c.serve(t, req{method: "POST", path: "/console/dead-letters/redrive", form: v, cookie: ck})
	}
	if w := post(url.Values{"mode": {"filter"}}); w.Code != http.StatusBadRequest {
		t.Errorf("redrive by an empty filter = %d; want 400", w.Code)
	}
	if w := post(url.Values{"mode": {"selected"}}); w.Code != http.StatusBadRequest {
		t.Errorf("redrive with nothing selected = %d; want 400", w.Code)
	}
	w := post(url.Values{"mode": {"filter"}, "reason": {"rejected"}, "since": {"1h"}, "dry_run": {"1"}, "back": {"//evil.test/x"}})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Dry run: 1 dead letter(s) match") || strings.Contains(w.Body.String(), "evil.test") {
		t.Errorf("dry run by filter = %d:\n%s", w.Code, w.Body)
	}
	if len(f.redrv) != 1 || f.redrv[0]["reason"] != "rejected" || f.redrv[0]["since"] != "1h" || f.redrv[0]["dry_run"] != true {
		t.Errorf("redrive body %v; want reason, since, dry_run", f.redrv)
	}
}

func TestResume(t *testing.T) {
	c, _ := newTestConsole(t)
	ck, csrf := login(t, c)
	w := c.serve(t, req{method: "POST", path: "/console/businesses/2002/resume", form: url.Values{"csrf": {csrf}}, cookie: ck})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "2 parked message(s)") {
		t.Errorf("resume = %d:\n%s", w.Code, w.Body)
	}
	w = c.serve(t, req{method: "GET", path: "/console/businesses/2002", cookie: ck})
	if strings.Contains(w.Body.String(), `id="resume"`) {
		t.Errorf("the resume button is still there after the pause ended")
	}
	w = c.serve(t, req{method: "POST", path: "/console/businesses/2002/resume", form: url.Values{"csrf": {csrf}}, cookie: ck})
	if !strings.Contains(w.Body.String(), "was not paused") {
		t.Errorf("second resume:\n%s", w.Body)
	}
}

func TestLive(t *testing.T) {
	c, _ := newTestConsole(t)
	if w := c.serve(t, req{method: "GET", path: "/console/live.json"}); w.Code != http.StatusUnauthorized {
		t.Errorf("live.json logged out = %d; want 401", w.Code)
	}
	ck, _ := login(t, c)
	w := c.serve(t, req{method: "GET", path: "/console/live.json", cookie: ck})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"graph_latency_p99_ms":480`) || !strings.Contains(w.Body.String(), `"webhooks_per_s":`) {
		t.Errorf("live.json = %d %s", w.Code, w.Body)
	}
}

func TestLiveRates(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	st := statsJSON{StepSeconds: 60, Start: apiTime{start}, Series: map[string][]float64{
		"webhooks": {600, 120, 30}, "conversions": {0, 60, 0}}}
	// 30 s into the third minute: (120+30) over 90 s, (60+0) over 90 s.
	r := liveRates(st, start.Add(2*time.Minute+30*time.Second))
	if r.Webhooks != 150.0/90 || r.Conversions != 60.0/90 || r.Sent != 0 {
		t.Errorf("liveRates = %+v; want 1.67, 0.67, 0", r)
	}
}

func TestRegisterOnEcho(t *testing.T) {
	c, _ := newTestConsole(t)
	e := echo.New()
	c.Register(e)
	for path, want := range map[string]int{"/console": http.StatusSeeOther, "/console/login": http.StatusOK, "/console/static/console.js": http.StatusOK} {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequestWithContext(t.Context(), "GET", path, nil))
		if w.Code != want {
			t.Errorf("echo GET %s = %d; want %d", path, w.Code, want)
		}
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
