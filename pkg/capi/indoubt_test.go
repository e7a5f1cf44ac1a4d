package capi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// closingServer accepts connections, reads each request fully, then answers
// with do (which may just close the connection).
func closingServer(t *testing.T, do func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				req, err := http.ReadRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				do(conn)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// refusedURL returns an address nothing listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestIsInDoubt(t *testing.T) {
	events := []Event{channelEvents["whatsapp"]}
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	tests := []struct {
		name    string
		baseURL func(t *testing.T) string
		ctx     func(t *testing.T) context.Context
		want    bool
	}{
		{
			name:    "server closes after reading the request",
			baseURL: func(t *testing.T) string { return closingServer(t, func(net.Conn) {}) },
			want:    true,
		},
		{
			name: "server cut the response short",
			baseURL: func(t *testing.T) string {
				return closingServer(t, func(c net.Conn) {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"events_rec")
				})
			},
			want: true,
		},
		{
			name:    "timeout while waiting for the answer",
			baseURL: func(t *testing.T) string { return closingServer(t, func(net.Conn) { <-block }) },
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			want: true,
		},
		{
			name:    "connection refused",
			baseURL: refusedURL,
			want:    false,
		},
		{
			name:    "context cancelled before sending",
			baseURL: func(t *testing.T) string { return closingServer(t, func(net.Conn) {}) },
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx
			},
			want: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx(t)
			}
			c := NewClient(Config{BaseURL: tt.baseURL(t), AppSecret: testSecret})
			_, err := c.Send(ctx, "1", testToken, events)
			if err == nil {
				t.Fatal("Send() succeeded; want a transport error")
			}
			t.Logf("Send() error: %v", err)
			if got := IsInDoubt(err); got != tt.want {
				t.Errorf("IsInDoubt(%v) = %v; want %v", err, got, tt.want)
			}
			for _, secret := range []string{testToken, testProof, "ARAkLkA8rmlFeiCktEJQ-test"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error text %q contains a secret", err.Error())
				}
			}
		})
	}
}

func TestIsInDoubtKeepsCause(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c := NewClient(Config{BaseURL: refusedURL(t)})
	_, err := c.Send(ctx, "1", testToken, []Event{channelEvents["messenger"]})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Send(cancelled ctx) error = %v; want it to wrap context.Canceled", err)
	}
	if IsInDoubt(&APIError{Status: 500}) {
		t.Error("IsInDoubt(*APIError) = true; want false")
	}
	if IsInDoubt(errors.New("other")) {
		t.Error("IsInDoubt(foreign error) = true; want false")
	}
}

func TestScrubMasksToken(t *testing.T) {
	err := scrub(errors.New("dial tcp: lookup EAAB-test-token-123.example: no such host"), testToken)
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("scrub() = %q; still contains the token", err)
	}
}
