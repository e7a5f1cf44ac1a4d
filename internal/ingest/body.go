package ingest

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
)

// Memory before authentication. The webhook listener faces the internet, and
// nothing about a request is known to be Meta's until its body has been read
// and its signature checked. So what a request may cost before then is
// bounded three ways:
//
//   - a body's buffer grows with the bytes that arrived (it starts at
//     firstChunk and at most doubles), never with what Content-Length
//     announces: 2,000 connections announcing 3 MiB and sending one byte
//     hold 2,000 × 8 KiB, not 6 GB;
//   - all bodies being read or handled share one budget
//     (MAX_BODY_BYTES_IN_FLIGHT), reserved as buffers grow; past it a
//     request gets 503, which Meta retries;
//   - the listener accepts at most MAX_CONNECTIONS connections at once
//     (connLimit), which bounds the per-connection cost (goroutine, header
//     buffers) the budget does not see.
//
// POST /webhook also refuses a missing or malformed X-Hub-Signature-256
// before reading anything (postWebhook).

// firstChunk is the first buffer of every body, taken from a pool: it holds
// nearly every Meta delivery (typically 1–5 KB), so the hot path does not
// allocate.
const firstChunk = 8 << 10

// bodyBudget counts the bytes the buffers of bodies in flight hold, against
// a maximum. It is safe for concurrent use.
type bodyBudget struct {
	max    int64
	used   atomic.Int64
	bodies atomic.Int64 // bodies being read or handled, for the gauge
}

// reserve takes n bytes from the budget and reports whether they fit.
func (b *bodyBudget) reserve(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *bodyBudget) release(n int64) { b.used.Add(-n) }

// body is a request body read by readBody; release it with releaseBody.
type body struct {
	first    []byte // the pooled first chunk, kept for reuse
	b        []byte // the body: first[:n] or a grown buffer
	reserved int64  // bytes held in the budget
	grown    bool   // b is not first
}

func newBodyPool() sync.Pool {
	return sync.Pool{New: func() any { return &body{first: make([]byte, 0, firstChunk)} }}
}

// readBody reads the request body, refusing more than BODY_LIMIT bytes
// (413) and a buffer the budget cannot hold (503). The caller returns the
// body with releaseBody when it no longer uses its bytes.
func (s *Server) readBody(req *http.Request) (*body, error) {
	limit := s.cfg.BodyLimit
	if req.ContentLength > limit {
		return nil, errBodyTooLarge
	}
	if !s.budget.reserve(firstChunk) {
		return nil, errOverloaded
	}
	bd := s.bodies.Get().(*body)
	bd.reserved = firstChunk
	s.budget.bodies.Add(1)
	b := bd.first[:0]
	for {
		if len(b) == cap(b) {
			var ok bool
			if b, ok = s.grow(bd, b, req.ContentLength); !ok {
				s.releaseBody(bd)
				return nil, errOverloaded
			}
		}
		n, err := req.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			s.releaseBody(bd)
			return nil, errBodyTooLarge
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			s.releaseBody(bd)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, errDeadline
			}
			return nil, errReadBody
		}
	}
	bd.b = b
	return bd, nil
}

// grow returns a buffer holding b with room for more: twice its size, but
// no more than Content-Length announces (plus one byte, to see EOF without
// growing again) or BODY_LIMIT allows. The new buffer is reserved before it
// is allocated, and a grown buffer it replaces is released after the copy
// (the pooled first chunk stays reserved: the body keeps it for the pool).
// It reports false when the budget cannot hold the new buffer.
func (s *Server) grow(bd *body, b []byte, contentLength int64) ([]byte, bool) {
	n := 2 * int64(cap(b))
	if contentLength >= 0 && n > contentLength+1 {
		n = contentLength + 1
	}
	if n > s.cfg.BodyLimit+1 {
		n = s.cfg.BodyLimit + 1
	}
	if n <= int64(cap(b)) {
		n = int64(cap(b)) + 1 // longer than announced: the limit check ends it
	}
	if !s.budget.reserve(n) {
		return b, false
	}
	nb := make([]byte, len(b), n)
	copy(nb, b)
	if bd.grown {
		s.budget.release(int64(cap(b)))
		bd.reserved -= int64(cap(b))
	}
	bd.grown = true
	bd.reserved += n
	return nb, true
}

// releaseBody gives the body's bytes back to the budget and its first
// chunk to the pool. The body's bytes must not be used afterwards.
func (s *Server) releaseBody(bd *body) {
	s.budget.release(bd.reserved)
	s.budget.bodies.Add(-1)
	bd.b, bd.reserved, bd.grown = nil, 0, false
	s.bodies.Put(bd)
}
