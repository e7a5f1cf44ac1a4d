package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestConsoleMounted: /console is on the admin listener, logs in with
// ADMIN_TOKEN, and reads its pages from the admin API in process (with the
// embedded store, whatever the registry answers, the page shows it).
func TestConsoleMounted(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	a := startAllInOne(t, testVars(t.TempDir()))
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(a.admin + "/console/")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("GET /console/ logged out = %d to %q; want 303 to the login", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ := http.NewRequest(http.MethodPost, a.admin+"/console/login", strings.NewReader(url.Values{"token": {"aio-admin"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", a.admin)
	resp, err = noRedirect.Do(req)
	must(t, err)
	resp.Body.Close()
	cks := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cks) != 1 {
		t.Fatalf("login = %d with %d cookies; want 303 and a session", resp.StatusCode, len(cks))
	}
	req, _ = http.NewRequest(http.MethodGet, a.admin+"/console/businesses", nil)
	req.AddCookie(cks[0])
	resp, err = noRedirect.Do(req)
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The embedded store may lack the registry's commands (503, shown as
	// the API's error) or have them (the table): the page is there either way.
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<h1>Businesses</h1>") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("GET /console/businesses = %d %q:\n%s", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), body)
	}
}
