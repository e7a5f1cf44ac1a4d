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

// TestBusinessesListUnreadable: a record the registry cannot read is
// shown in the list, marked unreadable with its key id and why, and the
// other businesses with it.
func TestBusinessesListUnreadable(t *testing.T) {
	c, f := newTestConsole(t)
	f.biz["1500"] = map[string]any{"business_id": "1500", "unreadable": true, "key_id": "k1",
		"error": "sealed with key id k1, which REGISTRY_KEY does not list"}
	f.order = []string{"1001", "1500", "2002"}
	ck, _ := login(t, c)
	w := c.serve(t, req{method: "GET", path: "/console/businesses", cookie: ck})
	body := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("GET /console/businesses = %d; want 200:\n%s", w.Code, body)
	}
	for _, s := range []string{"1001", "2002", "1500", "unreadable (key k1)", "REGISTRY_KEY does not list"} {
		if !strings.Contains(body, s) {
			t.Errorf("businesses page lacks %q", s)
		}
	}
	if slices.Contains(f.called(), "GET /v1/businesses/1500") {
		t.Error("the console asked for the unreadable record's health")
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
