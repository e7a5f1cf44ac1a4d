package console

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ctmpipe/ctmpipe/internal/browsertest"
)

// TestConsoleInBrowser drives the console in headless chromium over the
// fake admin API: log in, see the overview refresh, open a business, tick
// its dead letter, redrive it and see the event's trail turn sent, log
// out. Any console error, uncaught exception, failed resource or CSP
// violation in the page fails it. CONSOLE_SCREENSHOT_DIR receives the
// overview's screenshot as console.png (the README's docs/console.png).
func TestConsoleInBrowser(t *testing.T) {
	b := browsertest.Start(t)
	f := newFakeAPI(testToken)
	c := New(Config{Token: testToken}, f)
	mux := http.NewServeMux()
	mux.Handle("/console", c)
	mux.Handle("/console/", c)
	mux.Handle("/", f)
	mux.HandleFunc("/broken", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><title>x</title><p id="p">x</p><script>console.error("boom from the page")</script>`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	b.Do("log in",
		chromedp.Navigate(srv.URL+"/console/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), testToken),
		chromedp.Click(chromedp.ID("login")),
		// The overview, once its fetch loop has answered.
		chromedp.WaitReady(chromedp.CSS("#live[data-updated]")),
	)
	if got := b.Text(`[data-live="graph_latency_p99_ms"]`); got != "480" {
		t.Errorf("overview p99 = %q; want 480", got)
	}
	if got := b.Text("#window-1h h3"); got != "Outcomes by reason" {
		t.Errorf("overview section = %q", got)
	}
	shot := b.Screenshot("console")
	if dir := os.Getenv("CONSOLE_SCREENSHOT_DIR"); dir != "" {
		png, err := os.ReadFile(shot)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "console.png"), png, 0o644)
		}
		if err != nil {
			t.Errorf("CONSOLE_SCREENSHOT_DIR: %v", err)
		}
	}

	b.Do("open a business",
		chromedp.Click(chromedp.CSS(`header nav a[href="/console/businesses"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a.biz[href="/console/businesses/1001"]`)),
		chromedp.Click(chromedp.CSS(`a.biz[href="/console/businesses/1001"]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.dead-letters input[name="seq"][value="42"]`)),
	)
	if got := b.Text("table.dead-letters td.err"); !strings.Contains(got, "<script>alert(1)</script>") {
		t.Errorf("dead letter error shown as %q; want Meta's text, as text", got)
	}
	b.Screenshot("business")
	b.Do("redrive its dead letter",
		chromedp.Click(chromedp.CSS("table.dead-letters input.select-all")), // the script ticks every row
		chromedp.Click(chromedp.CSS("button.redrive-selected")),
		chromedp.WaitVisible(chromedp.ID("result")),
	)
	if got := b.Text("#result"); !strings.Contains(got, "Redriven 1 of 1") {
		t.Errorf("redrive result %q", got)
	}
	b.Do("look the event up",
		chromedp.Click(chromedp.ID("nav-events")),
		chromedp.WaitVisible(chromedp.ID("event_id")),
		chromedp.SendKeys(chromedp.ID("business"), "1001"),
		chromedp.SendKeys(chromedp.ID("event_id"), "ord-1"),
		chromedp.Click(chromedp.ID("lookup")),
		chromedp.WaitVisible(chromedp.ID("state")),
	)
	if got := b.Text("#state"); got != "sent" {
		t.Errorf("trail state after the redrive = %q; want sent", got)
	}
	b.Screenshot("event")
	b.Do("log out",
		chromedp.Click(chromedp.CSS("form.logout button")),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
	b.CheckClean()

	// The check above is real: a page that logs an error is caught.
	b.Do("open a page that logs an error", chromedp.Navigate(srv.URL+"/broken"), chromedp.WaitVisible(chromedp.ID("p")))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(strings.Join(b.Problems(), "\n"), "boom from the page") {
		if time.Now().After(deadline) {
			t.Fatalf("the browser's console error was not collected: %q", b.Problems())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
