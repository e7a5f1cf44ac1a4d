package replay

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSignatureUsesTheConfiguredSecret(t *testing.T) {
	f := &fakeIngest{}
	cfg := testConfig(startIngest(t, f))
	cfg.Secret = []byte("another-app")
	body := compact(t, "messenger_message_with_ad_referral.json")

	sum := mustRun(t, cfg, Reader("stdin", strings.NewReader(body)))

	// The fake only knows testSecret: a body signed with another one is a
	// 401, which is final (not retried) and reported with ingest's words.
	if f.badSig != 1 || len(f.requests()) != 0 {
		t.Fatalf("bad signatures = %d, accepted = %d; want 1, 0", f.badSig, len(f.requests()))
	}
	want := []string{"stdin:1: status 401 (signature does not match)"}
	if diff := cmp.Diff(want, failureStrings(sum)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	if sum.Statuses[401] != 1 || sum.Retried != 0 {
		t.Errorf("statuses = %v, retried = %d; want 401×1, no retry", sum.Statuses, sum.Retried)
	}
}

func TestOnPremRouting(t *testing.T) {
	onprem := compact(t, "whatsapp_onprem_text_with_referral.json")
	cloud := compact(t, "whatsapp_cloud_text_with_ctwa_referral.json")
	f := &fakeIngest{}
	cfg := testConfig(startIngest(t, f))
	cfg.Concurrency = 1

	sum := mustRun(t, cfg, Reader("stdin", strings.NewReader(onprem+"\n"+cloud+"\n")))

	want := []request{
		{Path: PathOnPrem, Body: onprem, OnPrem: testOnPremSecret},
		{Path: PathCloud, Body: cloud},
	}
	if diff := cmp.Diff(want, f.requests(), cmpIgnoreAt); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if sum.OK != 2 || f.badSig != 0 {
		t.Errorf("ok = %d, bad signatures = %d; want 2, 0", sum.OK, f.badSig)
	}
}

var cmpIgnoreAt = cmp.Comparer(func(a, b time.Time) bool { return true })

func TestOnPremWithoutSecretIsNotSent(t *testing.T) {
	f := &fakeIngest{}
	cfg := testConfig(startIngest(t, f))
	cfg.OnPremSecret = ""
	onprem := compact(t, "whatsapp_onprem_text_with_referral.json")

	sum := mustRun(t, cfg, Reader("stdin", strings.NewReader(onprem)))

	if f.signed+f.badSig != 0 {
		t.Errorf("ingest got %d requests; want none", f.signed+f.badSig)
	}
	want := []string{"stdin:1: On-Premises body but ONPREM_SECRET is not set"}
	if diff := cmp.Diff(want, failureStrings(sum)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
}

func TestOnPremURL(t *testing.T) {
	tests := map[string]string{
		"http://127.0.0.1:8080/webhook":    "http://127.0.0.1:8080/webhook/onprem",
		"http://127.0.0.1:8080/webhook/":   "http://127.0.0.1:8080/webhook/onprem",
		"https://x.example/hooks/meta?a=b": "https://x.example/hooks/meta/onprem?a=b",
		"http://u:p@x.example:9/webhook":   "http://u:p@x.example:9/webhook/onprem",
	}
	for in, want := range tests {
		if got := OnPremURL(in); got != want {
			t.Errorf("OnPremURL(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestRetries(t *testing.T) {
	body := compact(t, "messenger_message_with_ad_referral.json")
	tests := []struct {
		name     string
		statuses []int // answers to successive attempts; the last repeats
		retries  int
		wantReqs int
		wantOK   bool
		wantFail string
		wantWait []int
	}{
		{name: "503 twice then 200", statuses: []int{503, 503, 200}, retries: 3, wantReqs: 3, wantOK: true, wantWait: []int{1, 2}},
		{name: "400 is final", statuses: []int{400}, retries: 3, wantReqs: 1, wantFail: "stdin:1: status 400"},
		{name: "413 is final", statuses: []int{413}, retries: 3, wantReqs: 1, wantFail: "stdin:1: status 413"},
		{name: "503 until out of retries", statuses: []int{503}, retries: 2, wantReqs: 3,
			wantFail: "stdin:1: status 503 after 3 attempts", wantWait: []int{1, 2}},
		{name: "no retries", statuses: []int{500}, retries: 0, wantReqs: 1, wantFail: "stdin:1: status 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeIngest{respond: func(n int, _ string) int {
				return tt.statuses[min(n, len(tt.statuses))-1]
			}}
			cfg := testConfig(startIngest(t, f))
			cfg.Retries = tt.retries
			var mu sync.Mutex
			var waits []int
			cfg.Backoff = func(n int) time.Duration {
				mu.Lock()
				waits = append(waits, n)
				mu.Unlock()
				return time.Millisecond
			}
			lim := &countingLimiter{}
			cfg.Limiter = lim

			sum := mustRun(t, cfg, Reader("stdin", strings.NewReader(body)))

			if f.signed != tt.wantReqs {
				t.Errorf("requests = %d; want %d", f.signed, tt.wantReqs)
			}
			if got := int(lim.n.Load()); got != f.signed {
				t.Errorf("limiter tokens taken = %d for %d requests; want one each", got, f.signed)
			}
			if (sum.OK == 1) != tt.wantOK {
				t.Errorf("ok = %d; want ok %v", sum.OK, tt.wantOK)
			}
			var wantFail []string
			if tt.wantFail != "" {
				wantFail = []string{tt.wantFail}
			}
			if diff := cmp.Diff(wantFail, failureStrings(sum)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if !slices.Equal(waits, tt.wantWait) {
				t.Errorf("backoff asked for retries %v; want %v", waits, tt.wantWait)
			}
			if retried := tt.wantReqs > 1; (sum.Retried == 1) != retried {
				t.Errorf("Retried = %d; want retried %v", sum.Retried, retried)
			}
		})
	}
}

func TestConnectionErrorsAreRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	target := srv.URL + PathCloud
	srv.Close() // nothing listens there any more
	cfg := testConfig(target)
	cfg.Retries = 2
	body := compact(t, "messenger_message_with_ad_referral.json")

	sum := mustRun(t, cfg, Reader("stdin", strings.NewReader(body)))

	if sum.Failed != 1 || sum.NoResponse != 1 || len(sum.Failures) != 1 {
		t.Fatalf("summary = %+v; want one failure with no response", sum)
	}
	if r := sum.Failures[0].Reason; !strings.HasPrefix(r, "no response after 3 attempts: ") {
		t.Errorf("reason = %q; want no response after 3 attempts", r)
	}
}

func TestDefaultBackoff(t *testing.T) {
	b := DefaultBackoff(time.Second)
	for n, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: time.Minute, 60: time.Minute} {
		for range 20 {
			if d := b(n); d <= base/2 || d > base {
				t.Errorf("DefaultBackoff(1s)(%d) = %v; want in (%v, %v]", n, d, base/2, base)
			}
		}
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	const bodies, workers = 12, 3
	f := &fakeIngest{gate: make(chan struct{})}
	cfg := testConfig(startIngest(t, f))
	cfg.Concurrency = workers
	line := compact(t, "messenger_message_with_ad_referral.json")
	in := strings.Repeat(line+"\n", bodies)

	done := make(chan *Summary)
	go func() {
		sum, _ := Run(t.Context(), cfg, []Source{Reader("stdin", strings.NewReader(in))})
		done <- sum
	}()
	// Let requests through one at a time, each time once as many are in
	// flight as the bound allows: an unbounded sender would pile up more.
	for left := bodies; left > 0; left-- {
		want := int64(min(workers, left))
		waitFor(t, 10*time.Second, "requests in flight", func() bool { return f.inFlight.Load() >= want })
		<-f.gate
	}
	sum := <-done
	if got := f.maxInFlight.Load(); got != workers {
		t.Errorf("max requests in flight = %d; want %d", got, workers)
	}
	if sum.OK != bodies {
		t.Errorf("ok = %d; want %d", sum.OK, bodies)
	}
}

func TestRunStopsWhenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f := &fakeIngest{respond: func(int, string) int {
		cancel() // the operator presses Ctrl-C during the first request
		return http.StatusOK
	}}
	cfg := testConfig(startIngest(t, f))
	cfg.Concurrency = 1
	line := compact(t, "messenger_message_with_ad_referral.json")

	sum, err := Run(ctx, cfg, []Source{Reader("stdin", strings.NewReader(strings.Repeat(line+"\n", 100)))})

	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v; want context.Canceled", err)
	}
	if f.signed != 1 {
		t.Errorf("ingest got %d requests; want only the first", f.signed)
	}
	if sum.Bodies >= 100 || sum.OK > 1 {
		t.Errorf("summary: %d bodies, %d ok; want the replay cut short", sum.Bodies, sum.OK)
	}
	for _, fl := range sum.Failures {
		if fl.Reason != "interrupted" {
			t.Errorf("failure %q; want interrupted", fl)
		}
	}
}
