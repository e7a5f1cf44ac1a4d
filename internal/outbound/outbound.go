// Package outbound holds what forwarding (internal/forward) and the
// partner notifications (internal/notify) share to POST to URLs an operator
// configured: the destinations (named by host and a hash, never by their
// text, which may hold a token), one HTTP client per destination, the retry
// schedule, and answers and errors safe to log and to keep in a dead letter.
package outbound

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Destination is one configured URL.
type Destination struct {
	URL   string // as configured: may hold credentials, never logged
	Host  string // host[:port]: logs, metric labels, dead-letter headers
	Label string // Host, made unique when two URLs share one
	ID    string // stable hash of URL: consumer names and redrive subjects
}

// DestinationID is a stable short hash of a URL: 16 hex digits of its
// SHA-256. The URL itself may hold a token, so it names nothing.
func DestinationID(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:8])
}

// ParseDestinations checks each URL of the setting env. Errors name the
// entry by position, never by its text, which may hold credentials.
func ParseDestinations(env string, urls []string) ([]Destination, error) {
	var out []Destination
	seen := map[string]bool{}
	labels := map[string]int{}
	for i, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("config: %s entry %d: want an http:// or https:// URL with a host", env, i+1)
		}
		if seen[raw] {
			return nil, fmt.Errorf("config: %s entry %d: listed twice", env, i+1)
		}
		seen[raw] = true
		d := Destination{URL: raw, Host: u.Host, Label: u.Host, ID: DestinationID(raw)}
		if labels[u.Host]++; labels[u.Host] > 1 {
			d.Label = u.Host + "#" + strconv.Itoa(labels[u.Host])
		}
		out = append(out, d)
	}
	return out, nil
}

// SplitList splits a comma-separated list, dropping empty entries.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// NewClient is a destination's HTTP client: at most conc connections, no
// redirects (a 301/302 would turn the POST into a GET without the body, and
// its 200 would look like a delivery; a 3xx is retried and shows in the
// dead letter instead).
func NewClient(conc int, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:   true,
			MaxConnsPerHost:     conc,
			MaxIdleConnsPerHost: conc,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: timeout,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// maxDrain is how much of a destination's answer is read (and discarded) so
// that its connection can be reused.
const maxDrain = 64 << 10

// Post POSTs body with header to rawURL within timeout. It returns the
// status (0 without an answer) and, unless it was 2xx, an error whose text
// is safe to log and to keep in a dead letter: it never holds the URL's
// path, userinfo or query, nor anything of the body.
func Post(ctx context.Context, c *http.Client, rawURL string, body []byte, header http.Header, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("cannot build the request")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, fmt.Errorf("no answer within %s", timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // *url.Error's text holds the whole URL
		}
		return 0, fmt.Errorf("post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, fmt.Errorf("http %d", resp.StatusCode)
}

// MaxHeaderValue bounds the error text kept in a dead letter's header.
const MaxHeaderValue = 2048

// HeaderValue makes text safe for a NATS header: one line, bounded.
func HeaderValue(text string) string {
	text = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, text)
	if len(text) > MaxHeaderValue {
		text = strings.ToValidUTF8(text[:MaxHeaderValue], "")
	}
	return text
}

// Backoff is a retry schedule: exponential with full jitter (AWS
// Architecture Blog, "Exponential Backoff And Jitter"). The n-th failed
// attempt waits a uniformly random time in (0, min(Max, Min·2^(n-1))], so
// that a destination coming back after an outage is not hit by its whole
// backlog at once. An age, not a count, ends the retries (the caller's).
type Backoff struct {
	Min, Max time.Duration
	// Rand returns a uniform value in [0, n); defaults to math/rand/v2.
	Rand func(n int64) int64
}

// Ceiling is the longest wait after the n-th failed attempt (n ≥ 1).
func (b Backoff) Ceiling(n int) time.Duration {
	d := b.Min
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Delay is the wait after the n-th failed attempt: at least a millisecond,
// at most Ceiling(n).
func (b Backoff) Delay(n int) time.Duration {
	c := b.Ceiling(n)
	r := b.Rand
	if r == nil {
		r = rand.Int64N
	}
	if c <= time.Millisecond {
		return time.Millisecond
	}
	return time.Millisecond + time.Duration(r(int64(c-time.Millisecond)+1))
}
