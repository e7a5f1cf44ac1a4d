package outbound

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 10 * time.Second}
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, b.Ceiling(n))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ceilings (-want +got):\n%s", diff)
	}
	if c := b.Ceiling(1000); c != 10*time.Second {
		t.Errorf("Ceiling(1000) = %v; want the 10s cap", c)
	}
	b.Rand = func(n int64) int64 { return n - 1 }
	if d := b.Delay(3); d != 4*time.Second {
		t.Errorf("Delay(3) with the largest draw = %v; want 4s", d)
	}
	b.Rand = func(int64) int64 { return 0 }
	if d := b.Delay(3); d != time.Millisecond {
		t.Errorf("Delay(3) with the smallest draw = %v; want 1ms", d)
	}
}

// A failed post's error never holds the URL's path, userinfo or query.
func TestPostErrorHidesURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test") != "1" {
			t.Errorf("header X-Test = %q; want 1", r.Header.Get("X-Test"))
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	c := NewClient(1, time.Second)
	u := strings.Replace(srv.URL, "http://", "http://user:pw@", 1) + "/secret-path?token=t0k"
	status, err := Post(t.Context(), c, u, []byte("{}"), http.Header{"X-Test": {"1"}}, time.Second)
	if status != 500 || err == nil || err.Error() != "http 500" {
		t.Errorf("Post = %d, %v; want 500, http 500", status, err)
	}
	_, err = Post(t.Context(), c, "http://user:pw@127.0.0.1:1/secret-path?token=t0k", nil, nil, time.Second)
	if err == nil || strings.Contains(err.Error(), "secret-path") || strings.Contains(err.Error(), "t0k") || strings.Contains(err.Error(), "pw") {
		t.Errorf("Post to a closed port: %v; want an error without the URL", err)
	}
}

func TestParseDestinations(t *testing.T) {
	_, err := ParseDestinations("NOTIFY_URLS", []string{"https://a.example/x", "ftp://t0ken@b.example"})
	if err == nil || !strings.Contains(err.Error(), "NOTIFY_URLS entry 2") || strings.Contains(err.Error(), "t0ken") {
		t.Errorf("ParseDestinations = %v; want entry 2 named, not its text", err)
	}
}
