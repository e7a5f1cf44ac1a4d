package ingest

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// maxHeaderBytes bounds a request's headers on the webhook listener.
const maxHeaderBytes = 64 << 10

// withDeadline gives every request one deadline, RESPONSE_DEADLINE, inline
// (a goroutine per request, as http.TimeoutHandler does, cost 18 µs a
// webhook on the benchmark): the connection's read deadline bounds the body,
// and the request's context bounds the wait in the write coalescer's queue
// and the store write (coalesce.go). What fails past it answers 503 (Meta
// retries) and is counted and alerted by handleError.
func (s *Server) withDeadline(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deadline := time.Now().Add(s.cfg.ResponseDeadline)
		// Not every ResponseWriter supports it (httptest's recorder does
		// not); the server's ReadTimeout bounds the body then.
		_ = http.NewResponseController(w).SetReadDeadline(deadline)
		ctx, cancel := context.WithDeadline(r.Context(), deadline)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// pastDeadline reports whether the request's RESPONSE_DEADLINE has passed
// (by the clock: the timers of the context and of a store call due at the
// same instant fire in either order).
func pastDeadline(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
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
