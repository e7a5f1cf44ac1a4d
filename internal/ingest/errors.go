package ingest

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/pkg/replicas"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// httpError is an error with the status it answers. Its message is what the
// client sees: constant text, never ids or secrets.
type httpError struct {
	status int
	msg    string
	cause  error
}

func (e *httpError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.cause }

// HTTPStatus is the status the error answers (internal/admin maps errors
// of the admin routes with it).
func (e *httpError) HTTPStatus() int { return e.status }

// PublicMessage is the constant text the client sees.
func (e *httpError) PublicMessage() string { return e.msg }

// The answers handlers return. Status codes are a promise to Meta, which
// retries anything but 200.
var (
	errBodyTooLarge    = &httpError{status: http.StatusRequestEntityTooLarge, msg: "body exceeds BODY_LIMIT"}
	errTooManyTouches  = &httpError{status: http.StatusRequestEntityTooLarge, msg: "delivery carries more ad clicks than one delivery may (maxTouchesPerDelivery)"}
	errBadSignature    = &httpError{status: http.StatusUnauthorized, msg: "missing or invalid X-Hub-Signature-256", cause: webhook.ErrSignature}
	errNotJSON         = &httpError{status: http.StatusBadRequest, msg: "body is not a JSON object", cause: webhook.ErrNotJSON}
	errReadBody        = &httpError{status: http.StatusBadRequest, msg: "could not read body"}
	errOverloaded      = &httpError{status: http.StatusServiceUnavailable, msg: "too many request bodies in flight; retry later"}
	errDeadline        = &httpError{status: http.StatusServiceUnavailable, msg: "response deadline exceeded; retry later"}
	errHandshake       = &httpError{status: http.StatusForbidden, msg: "verification failed"}
	errOnPremAuth      = &httpError{status: http.StatusUnauthorized, msg: "missing or wrong on-premises secret"}
	errOnPremDisabled  = &httpError{status: http.StatusNotFound, msg: "on-premises webhooks disabled: ONPREM_SECRET and ONPREM_WABA_ID are not set"}
	errAdminAuth       = &httpError{status: http.StatusUnauthorized, msg: "missing or wrong bearer token"}
	errAdminDisabled   = &httpError{status: http.StatusNotFound, msg: "admin API disabled: ADMIN_TOKEN is not set"}
	errNoContext       = &httpError{status: http.StatusNotFound, msg: "no context stored for this conversation"}
	errBadChannel      = &httpError{status: http.StatusBadRequest, msg: "channel must be whatsapp, messenger or instagram"}
	errForwardTooLarge = &httpError{status: http.StatusRequestEntityTooLarge, msg: "body too large for the forwarding queue (NATS max_payload)"}
)

// queueError answers 503 when JetStream could not take what must be stored
// before the 200 (a body to forward, automatic events): Meta retries.
func queueError(err error) error {
	return &httpError{status: http.StatusServiceUnavailable, msg: "queue unavailable", cause: err}
}

// storeError answers 503 so that Meta retries a delivery the store could not
// take: nothing is lost.
func storeError(err error) error {
	if replicas.IsNotReplicated(err) {
		// Stored on the primary perhaps, but not yet on REDIS_MIN_REPLICAS
		// replicas: a failover could lose it, so Meta must deliver again.
		return &httpError{status: http.StatusServiceUnavailable, msg: "store write not confirmed by enough replicas (REDIS_MIN_REPLICAS)", cause: err}
	}
	return &httpError{status: http.StatusServiceUnavailable, msg: "store unavailable", cause: err}
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// handleError is the one place errors become responses: handlers return
// them, this maps them to a status, logs what an operator must see, and
// answers with a constant message.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := http.StatusInternalServerError, "internal error"
	var he *httpError
	var ee *echo.HTTPError
	switch {
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case errors.As(err, &ee):
		// Echo's own answers: unknown route, wrong method.
		status, msg = ee.Code, http.StatusText(ee.Code)
	}
	if status >= 500 && pastDeadline(c.Request().Context()) {
		// Whatever failed, it failed because RESPONSE_DEADLINE passed.
		err, status, msg = errDeadline, errDeadline.status, errDeadline.msg
	}
	route := c.Path()
	switch {
	case errors.Is(err, errOverloaded):
		s.alerts.overload.hit(zap.String("route", route), zap.Int64("max_body_bytes_in_flight", s.cfg.MaxBodyBytesInFlight))
	case errors.Is(err, errDeadline):
		s.deadlineExceeded(routeLabel(c.Request().URL.Path))
	case status == http.StatusServiceUnavailable:
		s.alerts.store.hit(zap.String("route", route), zap.Error(err))
	case status >= 500:
		s.log.Error("request failed", zap.String("route", route), zap.Int("status_code", status), zap.Error(err))
	default:
		// Client errors are counted in metrics; logging each would let a
		// caller flood the log (signature failures alert on their own).
		s.log.Debug("request rejected", zap.String("route", route), zap.Int("status_code", status), zap.String("reason", msg))
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		err = c.JSON(status, errorBody{Error: msg})
	}
	if err != nil {
		s.log.Debug("write error response", zap.Error(err))
	}
}
