package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/admin"
)

// On the admin listener, guesses from the operator's own address (all of
// them 127.0.0.1 by default) block that address's tokens: the console's
// login answers its page with 429, but a console already logged in keeps
// working, since its API calls are the process's own (admin.InProcess).
func TestConsoleUnderTheGuard(t *testing.T) {
	f := newFakeAPI(testToken)
	adm := admin.New(admin.Config{Token: testToken}, zap.NewNop(), prometheus.NewRegistry())
	adm.API().Any("/v1/*", echo.WrapHandler(f))
	New(Config{Token: testToken}, adm.Handler()).Register(adm.Echo())
	h := adm.Handler()
	do := func(method, path, auth, cookie string, form url.Values) *httptest.ResponseRecorder {
		var r *http.Request
		if form != nil {
			r = httptest.NewRequestWithContext(t.Context(), method, "http://admin.test"+path, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Origin", "http://admin.test")
		} else {
			r = httptest.NewRequestWithContext(t.Context(), method, "http://admin.test"+path, nil)
		}
		r.RemoteAddr = "127.0.0.1:40000"
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := do("POST", "/console/login", "", "", url.Values{"token": {testToken}})
	var cookie string
	for _, ck := range w.Result().Cookies() {
		if ck.Name == cookieName {
			cookie = ck.Value
		}
	}
	if w.Code != http.StatusSeeOther || cookie == "" {
		t.Fatalf("login = %d, cookie %q", w.Code, cookie)
	}
	for i := range admin.GuardMaxFailures {
		if w := do("GET", "/v1/stats", "Bearer guess-"+strconv.Itoa(i), "", nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("a guess = %d; want 401", w.Code)
		}
	}
	if w := do("GET", "/v1/stats", "Bearer "+testToken, "", nil); w.Code != http.StatusTooManyRequests {
		t.Fatalf("the address is not blocked: %d", w.Code)
	}
	if w := do("GET", "/console/", "", cookie, nil); w.Code != http.StatusOK || strings.Contains(w.Body.String(), "429") {
		t.Fatalf("the logged-in console's overview = %d:\n%s", w.Code, w.Body)
	}
	w = do("POST", "/console/login", "", "", url.Values{"token": {testToken}})
	if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "Too many wrong tokens") ||
		!strings.Contains(w.Body.String(), "<form") || w.Header().Get("Retry-After") == "" {
		t.Fatalf("login from the blocked address = %d (Retry-After %q):\n%s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
}
