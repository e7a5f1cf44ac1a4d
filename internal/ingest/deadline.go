package ingest

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// maxHeaderBytes bounds a request's headers on the webhook listener.
const maxHeaderBytes = 64 << 10

// readGrace is how long after RESPONSE_DEADLINE a body may still be read:
// the answer has gone by then (503), and the connection's read deadline
// ends the read so that its buffer goes back to the budget. It comes after
// the deadline so that the 503 is the deadline's, not a read error's.
const readGrace = time.Second

// withDeadline answers every request within RESPONSE_DEADLINE, counting
// reading the body, waiting in the write coalescer's queue and the store
// write: http.TimeoutHandler answers 503 when the handler is not done by
// then (Meta retries; upserts are idempotent), and the handler's context
// ends, so that the coalescer skips a write nobody waits for.
func (s *Server) withDeadline(h http.Handler) http.Handler {
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Counted when the deadline passes, not when the handler ends: a
		// hung store must not delay the alert about it.
		ctx, route := r.Context(), routeLabel(r.URL.Path)
		stop := context.AfterFunc(ctx, func() {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				s.deadlineExceeded(route)
			}
		})
		h.ServeHTTP(w, r)
		stop()
	})
	th := http.TimeoutHandler(counted, s.cfg.ResponseDeadline, `{"error":"`+errDeadline.msg+`"}`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Not every ResponseWriter supports it (httptest's recorder does
		// not); the server's ReadTimeout bounds the body then.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.ResponseDeadline + readGrace))
		th.ServeHTTP(w, r)
	})
}

// deadlineExceeded counts and alerts a request answered 503 at the deadline.
func (s *Server) deadlineExceeded(route string) {
	s.m.deadline.Inc()
	s.alerts.deadline.hit(zap.String("route", route), zap.Duration("response_deadline", s.cfg.ResponseDeadline))
}

// routeLabel names a request path for the log without repeating what a
// caller sent.
func routeLabel(path string) string {
	switch path {
	case pathWebhook, pathOnPrem, "/healthz", "/readyz":
		return path
	}
	return "other"
}
