package capi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"
)

// Connection reuse. Requests to graph.facebook.com go over TLS, where
// net/http negotiates HTTP/2 by ALPN when the transport asks for it
// (ForceAttemptHTTP2: a custom transport does not by default). Over
// HTTP/2 the sender's many requests in flight (MAX_INFLIGHT) share a few
// connections as streams instead of one TCP and TLS handshake each; over
// plain HTTP (a local stand-in) they use up to MaxIdleConnsPerHost
// keep-alive connections. Idle connections close after IdleConnTimeout.
//
// With many requests on one HTTP/2 connection, a connection that dies
// silently would leave all of them waiting for HTTP_TIMEOUT, each then in
// doubt: the transport pings a connection that read nothing for
// HTTP2ReadIdleTimeout and closes it if the ping gets no answer within
// HTTP2PingTimeout, so its requests fail early (still in doubt if they
// were written, but seconds rather than HTTP_TIMEOUT later).
const (
	IdleConnTimeout      = 90 * time.Second
	HTTP2ReadIdleTimeout = 15 * time.Second
	HTTP2PingTimeout     = 10 * time.Second
)

// newTransport is net/http's default transport with HTTP/2 asked for,
// MaxIdleConnsPerHost idle connections per host kept, and health pings on
// idle HTTP/2 connections.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ForceAttemptHTTP2 = true
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	t.MaxIdleConns = max(t.MaxIdleConns, MaxIdleConnsPerHost)
	t.IdleConnTimeout = IdleConnTimeout
	t.HTTP2 = &http.HTTP2Config{SendPingTimeout: HTTP2ReadIdleTimeout, PingTimeout: HTTP2PingTimeout}
	return t
}

// maxResponseBytes bounds what the client reads of a Graph response.
const maxResponseBytes = 1 << 20

// TransportError is a request that got no usable answer from Meta. Its text
// never contains the request URL, which carries the access token.
type TransportError struct {
	Op string // what the client was doing: "post events", ...
	// InDoubt is set when the whole request was written (or a response had
	// begun) before the failure: Meta may have acted on it.
	InDoubt bool
	Err     error
}

func (e *TransportError) Error() string {
	s := "capi: " + e.Op + ": " + e.Err.Error()
	if e.InDoubt {
		s += " (request may have reached meta)"
	}
	return s
}

// Unwrap returns the cause.
func (e *TransportError) Unwrap() error { return e.Err }

// IsInDoubt reports whether err leaves it unknown if Meta acted on the request:
// the request was fully written but no complete answer came back (connection
// closed or reset, timeout or cancellation while waiting, unreadable or
// inconsistent success body). It is false for an *APIError (Meta answered),
// for local refusals (empty or oversized batch) and for failures before the
// request was written (DNS, refused connection, context done before sending).
//
// Meta does not deduplicate business messaging events (onboarding guide FAQ),
// so a caller must not blindly resend an in-doubt batch.
func IsInDoubt(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return false
	}
	var te *TransportError
	return errors.As(err, &te) && te.InDoubt
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request. Whether the request was written is learnt from
// httptrace's WroteRequest: net/http never retries a written POST (it is not
// replayable), so a write that completed is the attempt that matters.
func (c *Client) do(ctx context.Context, op, method, u, token string, body []byte) (reply, error) {
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			wrote.Store(true)
		}
	}}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, u, rd)
	if err != nil {
		return reply{}, &TransportError{Op: op, Err: scrub(err, token)}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return reply{}, &TransportError{Op: op, InDoubt: wrote.Load(), Err: scrub(err, token)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		// The server began answering, so it had the request.
		return reply{}, &TransportError{Op: op, InDoubt: true, Err: scrub(err, token)}
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// scrub drops *url.Error's URL (it holds access_token and appsecret_proof) and,
// as a last guard, masks the token and anything like a secret (Scrub) anywhere
// else in the text. The chain is
// kept, so errors.Is(err, context.Canceled) still works.
func scrub(err error, token string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if msg := Scrub(err.Error(), token); msg != err.Error() {
		return &redacted{msg: msg, err: err}
	}
	return err
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
