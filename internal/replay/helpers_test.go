package replay

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/webhook"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

const (
	testSecret       = "s3cret-app"
	testOnPremSecret = "onprem-shared"
)

// request is what the fake ingest accepted.
type request struct {
	Path   string
	Body   string
	OnPrem string // X-Onprem-Secret
	At     time.Time
}

// fakeIngest is ingest's outside contract: it verifies the signature with
// webhook.Verify (401 otherwise), checks the On-Premises secret on
// /webhook/onprem, and records what it accepted. respond, when set, picks
// the status of a correctly signed request.
type fakeIngest struct {
	respond func(n int, body string) int // n counts signed requests, from 1

	mu      sync.Mutex
	got     []request
	signed  int
	badSig  int
	badPath int

	inFlight, maxInFlight atomic.Int64
	// gate, when set, holds each request until the test receives from it.
	gate chan struct{}
}

func (f *fakeIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxInFlight.Load()
		if n <= m || f.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	if f.gate != nil {
		f.gate <- struct{}{}
	}
	body, _ := io.ReadAll(r.Body)
	if err := webhook.Verify(body, r.Header.Get(webhook.SignatureHeader), [][]byte{[]byte(testSecret)}); err != nil {
		f.mu.Lock()
		f.badSig++
		f.mu.Unlock()
		http.Error(w, "signature does not match", http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	f.signed++
	k := f.signed
	f.mu.Unlock()
	switch r.URL.Path {
	case PathCloud:
	case PathOnPrem:
		if r.Header.Get(OnPremSecretHeader) != testOnPremSecret {
			http.Error(w, "onprem secret does not match", http.StatusUnauthorized)
			return
		}
	default:
		f.mu.Lock()
		f.badPath++
		f.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	status := http.StatusOK
	if f.respond != nil {
		status = f.respond(k, string(body))
	}
	if status == http.StatusOK {
		f.mu.Lock()
		f.got = append(f.got, request{Path: r.URL.Path, Body: string(body), OnPrem: r.Header.Get(OnPremSecretHeader), At: time.Now()})
		f.mu.Unlock()
	}
	w.WriteHeader(status)
}

func (f *fakeIngest) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.got...)
}

func (f *fakeIngest) bodies() []string {
	var out []string
	for _, r := range f.requests() {
		out = append(out, r.Body)
	}
	return out
}

// startIngest serves f on a real port.
func startIngest(t *testing.T, f *fakeIngest) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL + PathCloud
}

// testConfig is a Config for target with test secrets, no waits between
// retries, and a timeout long enough for -race.
func testConfig(target string) Config {
	return Config{
		Target:       target,
		Secret:       []byte(testSecret),
		OnPremSecret: testOnPremSecret,
		Backoff:      func(int) time.Duration { return 0 },
		Timeout:      30 * time.Second,
	}
}

func mustRun(t *testing.T, cfg Config, sources ...Source) *Summary {
	t.Helper()
	sum, err := Run(t.Context(), cfg, sources)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return sum
}

func mustPath(t *testing.T, p string) Source {
	t.Helper()
	s, err := Path(p)
	if err != nil {
		t.Fatalf("Path(%q): %v", p, err)
	}
	return s
}

// fixture returns the bytes of a pkg/webhook testdata file.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "pkg", "webhook", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.CheckFor(t, d, func() error { return poll.Until(what, cond()) })
}

// countingLimiter counts the tokens taken.
type countingLimiter struct{ n atomic.Int64 }

func (l *countingLimiter) Wait(ctx context.Context) error {
	l.n.Add(1)
	return ctx.Err()
}
