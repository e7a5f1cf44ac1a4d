package replay

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

func TestNewLimiter(t *testing.T) {
	if l := NewLimiter(0); l != nil {
		t.Errorf("NewLimiter(0) = %v; want nil (no limit)", l)
	}
	if l := NewLimiter(-1); l != nil {
		t.Errorf("NewLimiter(-1) = %v; want nil (no limit)", l)
	}
	l, ok := NewLimiter(50).(*rate.Limiter)
	if !ok {
		t.Fatalf("NewLimiter(50) is %T; want *rate.Limiter", NewLimiter(50))
	}
	if l.Limit() != 50 || l.Burst() != 1 {
		t.Errorf("NewLimiter(50): limit %v burst %d; want 50, 1 (evenly spaced)", l.Limit(), l.Burst())
	}
}

// handlerTransport serves requests in memory, so that a replay runs inside
// a synctest bubble whose clock only moves when every goroutine waits.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// TestRateIsHonoured replays on synctest's fake clock: the spacing of the
// requests is exact, not a measurement of a busy machine.
func TestRateIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const bodies, perSecond = 20, 50
		var mu sync.Mutex
		var at []time.Duration
		start := time.Now()
		f := &fakeIngest{respond: func(int, string) int {
			mu.Lock()
			at = append(at, time.Since(start))
			mu.Unlock()
			return http.StatusOK
		}}
		cfg := testConfig("http://ingest.test/webhook")
		cfg.Client = &http.Client{Transport: handlerTransport{f}}
		cfg.Concurrency = 4
		cfg.Limiter = NewLimiter(perSecond)
		line := compact(t, "messenger_message_with_ad_referral.json")

		sum := mustRun(t, cfg, Reader("stdin", strings.NewReader(strings.Repeat(line+"\n", bodies))))

		if sum.OK != bodies || len(at) != bodies {
			t.Fatalf("ok = %d, requests = %d; want %d", sum.OK, len(at), bodies)
		}
		// Burst 1: the first goes at once, then one every 20ms.
		gap := time.Second / perSecond
		for i, d := range at {
			want := time.Duration(i) * gap
			if d < want-time.Millisecond || d > want+time.Millisecond {
				t.Errorf("request %d at %v; want %v", i, d, want)
			}
		}
	})
}

// TestRetriesWaitOnTheClock checks the backoff is really waited for.
func TestRetriesWaitOnTheClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var at []time.Duration
		start := time.Now()
		f := &fakeIngest{respond: func(n int, _ string) int {
			mu.Lock()
			at = append(at, time.Since(start))
			mu.Unlock()
			if n < 3 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		}}
		cfg := testConfig("http://ingest.test/webhook")
		cfg.Client = &http.Client{Transport: handlerTransport{f}}
		cfg.Retries = 3
		cfg.Backoff = func(n int) time.Duration { return time.Duration(n) * time.Second }

		sum := mustRun(t, cfg, Reader("stdin", strings.NewReader(compact(t, "messenger_message_with_ad_referral.json"))))

		want := []time.Duration{0, time.Second, 3 * time.Second}
		if sum.OK != 1 || len(at) != 3 || at[0] != want[0] || at[1] != want[1] || at[2] != want[2] {
			t.Errorf("ok = %d, attempts at %v; want 1 ok, attempts at %v", sum.OK, at, want)
		}
	})
}
