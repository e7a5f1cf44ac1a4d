// Package browsertest drives Debian's chromium (headless) from tests with
// chromedp: it finds the browser, collects every console error, uncaught
// exception and browser-log error of the page (a failed resource, a
// Content-Security-Policy violation), and saves screenshots.
//
// A test without chromium is skipped, unless CI is set: in CI (where .ci/run
// installs chromium with apt) a missing browser fails the test.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ActionTimeout bounds one Do (a navigation and its waits).
const ActionTimeout = time.Minute

// Path returns chromium's path ($CHROMIUM, else chromium or
// chromium-browser on PATH, else /usr/bin/chromium). Without one it skips
// t, or fails it when CI is set.
func Path(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" {
		t.Fatal("chromium is not installed, and CI is set: .ci/run installs it (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); CI is not set, so the browser test is skipped")
	return ""
}

// Browser is one headless chromium tab.
type Browser struct {
	t    testing.TB
	ctx  context.Context
	dir  string // screenshots
	done chan struct{}

	mu       sync.Mutex
	problems []string
}

// Start starts chromium with one tab and stops it at cleanup. Screenshots go
// to a temp dir, or to $BROWSER_SCREENSHOT_DIR when set, to keep them; the
// test logs where.
func Start(t testing.TB) *Browser {
	t.Helper()
	path := Path(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		// Tests run as root in CI's container, where chromium refuses to
		// start with its sandbox.
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	dir := os.Getenv("BROWSER_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &Browser{t: t, ctx: ctx, dir: dir, done: make(chan struct{})}
	messages := chromedp.Console(ctx) // starts the browser and subscribes
	go func() {
		defer close(b.done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.problems = append(b.problems, m.String()+" ("+m.URL+")")
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		<-b.done
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	t.Logf("browser screenshots: %s", b.dir)
	return b
}

// Do runs the actions within ActionTimeout and fails the test on an error.
func (b *Browser) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, ActionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.Screenshot("failed")
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// Text returns the text of the element sel matches (a CSS selector).
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, ActionTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// Location is the tab's URL.
func (b *Browser) Location() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, ActionTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("browser: location: %v", err)
	}
	return s
}

// Screenshot saves the whole page as <name>.png and returns its path.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, ActionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("browser: screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("browser: screenshot %s: %v", name, err)
	}
	return path
}

// Problems are the console errors, uncaught exceptions and browser-log
// errors seen so far.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// CheckClean fails the test for every problem seen so far.
func (b *Browser) CheckClean() {
	b.t.Helper()
	for _, p := range b.Problems() {
		b.t.Errorf("browser console: %s", p)
	}
}
