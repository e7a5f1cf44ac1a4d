package loadgen

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		status   int
		keep     bool
		wantErr  bool
		leftover string // what the next response would start with
	}{
		{"content length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloNEXT", 200, true, false, "NEXT"},
		{"no body", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nNEXT", 200, true, false, "NEXT"},
		{"chunked", "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\nTrailer: x\r\n\r\nNEXT", 503, true, false, "NEXT"},
		{"connection close", "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno", 401, false, false, ""},
		{"http 1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, false, false, ""},
		{"http 1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 200, true, false, ""},
		{"204 without length", "HTTP/1.1 204 No Content\r\n\r\nNEXT", 204, true, false, "NEXT"},
		{"body to close", "HTTP/1.1 200 OK\r\n\r\nall of it", 200, false, false, ""},
		{"lowercase headers", "HTTP/1.1 413 Too Large\r\ncontent-length: 1\r\n\r\nxNEXT", 413, true, false, "NEXT"},
		{"not http", "SSH-2.0-OpenSSH\r\n", 0, false, true, ""},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", 0, false, true, ""},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", 0, false, true, ""},
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, false, true, ""},
		{"truncated headers", "HTTP/1.1 200 OK\r\nContent-Le", 0, false, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tt.in))
			status, keep, err := readResponse(br)
			if (err != nil) != tt.wantErr || status != tt.status || keep != tt.keep {
				t.Fatalf("readResponse = %d, %v, %v; want %d, %v, error %v", status, keep, err, tt.status, tt.keep, tt.wantErr)
			}
			if !tt.wantErr {
				rest := make([]byte, 16)
				n, _ := br.Read(rest)
				if string(rest[:n]) != tt.leftover {
					t.Errorf("left %q unread; want %q", rest[:n], tt.leftover)
				}
			}
		})
	}
}

// verifyingServer answers 200 to correctly signed POSTs and 401 otherwise,
// counting both.
func verifyingServer(t *testing.T, secret []byte) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	var ok, bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil || r.URL.Path != "/webhook" ||
			webhook.Verify(body, r.Header.Get(webhook.SignatureHeader), [][]byte{secret}) != nil {
			bad.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		ok.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, &ok, &bad
}

func newTestLoad(t *testing.T, url string, secret []byte, rate float64) (*Load, [][]byte) {
	t.Helper()
	e, err := ParseEndpoint(url + "/webhook")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := ParseMix(DefaultMix)
	p := NewPool(NewBodyGen(2), m, secret, 0, 500, time.Now())
	reqs := make([][]byte, p.Len())
	for i := range reqs {
		reqs[i] = BuildRequest(e, p.Item(i))
	}
	return &Load{Name: "test", Endpoint: e, Pool: p, Conns: 4, Warmup: 50 * time.Millisecond,
		Duration: 200 * time.Millisecond, Rate: rate, Timeout: 5 * time.Second}, reqs
}

func TestClosedLoopSendsSignedRequests(t *testing.T) {
	secret := []byte("s3cret")
	srv, ok, bad := verifyingServer(t, secret)
	l, reqs := newTestLoad(t, srv.URL, secret, 0)
	r := l.Run(context.Background(), reqs)
	if bad.Load() != 0 {
		t.Fatalf("server rejected %d requests", bad.Load())
	}
	if r.OK() == 0 || r.Errors != 0 || r.Latency.Count() != r.OK() {
		t.Fatalf("result: ok %d, errors %d, latencies %d; want some ok, no errors, one latency each", r.OK(), r.Errors, r.Latency.Count())
	}
	// Warm-up and window together cannot have answered more than the server saw.
	if r.OK() > uint64(ok.Load()) || r.Requests != r.OK() {
		t.Errorf("counted %d ok of %d requests; server answered %d", r.OK(), r.Requests, ok.Load())
	}
	if r.Throughput() <= 0 {
		t.Errorf("Throughput = %v", r.Throughput())
	}
}

func TestOpenLoopAccountsForEveryDueRequest(t *testing.T) {
	secret := []byte("s3cret")
	srv, _, bad := verifyingServer(t, secret)
	l, reqs := newTestLoad(t, srv.URL, secret, 2000)
	r := l.Run(context.Background(), reqs)
	// Every request due in the window is answered, failed or missed: the
	// schedule decides how many, not the server's speed.
	s := Schedule{Rate: l.Rate}
	due := s.Count(l.Warmup+l.Duration) - s.Count(l.Warmup)
	if got := r.Requests + r.Errors + r.Missed; got != due {
		t.Errorf("answered %d + errors %d + missed %d = %d; want %d due in the window",
			r.Requests, r.Errors, r.Missed, got, due)
	}
	if bad.Load() != 0 || r.OK() != r.Requests {
		t.Errorf("codes %v, server rejected %d", r.Codes, bad.Load())
	}
	if r.Latency.Count() != r.Requests || r.Service.Count() != r.Requests {
		t.Errorf("latencies %d, service times %d; want %d", r.Latency.Count(), r.Service.Count(), r.Requests)
	}
}

func TestConnErrorsAreCounted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	l, reqs := newTestLoad(t, "http://"+addr, []byte("s"), 0)
	l.Warmup = 0
	r := l.Run(context.Background(), reqs)
	if r.Errors == 0 || r.Requests != 0 || r.Throughput() != 0 {
		t.Errorf("against a closed port: errors %d, requests %d, throughput %v; want errors only", r.Errors, r.Requests, r.Throughput())
	}
}

func TestBareHandler(t *testing.T) {
	srv := httptest.NewServer(BareHandler())
	defer srv.Close()
	l, reqs := newTestLoad(t, srv.URL, []byte("any"), 0)
	r := l.Run(context.Background(), reqs)
	if r.OK() == 0 || r.OK() != r.Requests || r.Errors != 0 {
		t.Errorf("bare: codes %v, errors %d; want only 200s", r.Codes, r.Errors)
	}
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in      string
		want    Endpoint
		wantErr bool
	}{
		{"http://127.0.0.1:8080/webhook", Endpoint{"127.0.0.1:8080", "127.0.0.1:8080", "/webhook"}, false},
		{"http://localhost/webhook?x=1", Endpoint{"localhost:80", "localhost", "/webhook?x=1"}, false},
		{"https://example.com/webhook", Endpoint{}, true},
		{"127.0.0.1:8080", Endpoint{}, true},
	}
	for _, tt := range tests {
		got, err := ParseEndpoint(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseEndpoint(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
