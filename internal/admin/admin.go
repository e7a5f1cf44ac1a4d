// Package admin is the admin listener (ADMIN_ADDR, by default
// 127.0.0.1:8081): /metrics and the APIs operators use, kept off the
// listener that faces the internet. Services register their routes on it:
// those behind ADMIN_TOKEN on API(), those with an authentication of their
// own (the conversion intake's INTAKE_TOKEN) on Echo() with RequireBearer.
//
// With ADMIN_TOKEN unset the admin API is off: every route of API() answers
// 404, whatever the request carries, and /metrics needs no token.
package admin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// WriteTimeout bounds writing one answer of the admin listener; handlers
// that wait (the intake's JetStream acks) must answer within it.
const WriteTimeout = time.Minute

// Config is the admin listener's configuration.
type Config struct {
	// Token is ADMIN_TOKEN, the bearer token of API() and /metrics; empty
	// turns the admin API off.
	Token string
	// ShutdownTimeout bounds in-flight requests at shutdown (15s when 0).
	ShutdownTimeout time.Duration
	// Now is the clock of the failed-authentication limit (time.Now when
	// nil; tests set it).
	Now func() time.Time
}

// Server is the admin listener's HTTP service.
type Server struct {
	cfg Config
	log *zap.Logger
	e   *echo.Echo
	api *echo.Group
}

// New returns the admin server serving gatherer's metrics on /metrics.
func New(cfg Config, log *zap.Logger, gatherer prometheus.Gatherer) *Server {
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 15 * time.Second
	}
	s := &Server{cfg: cfg, log: log.With(zap.String("component", "admin"))}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	// Every route of the listener, the console's and the intake's too:
	// tokens cannot be guessed faster than GuardMaxFailures a GuardWindow
	// from one address (guard.go, Check).
	e.Use(recoverPanic, NewGuard(s.log, cfg.Now).middleware)
	metrics := echo.WrapHandler(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	if cfg.Token != "" {
		e.GET("/metrics", metrics, RequireBearer(cfg.Token))
	} else {
		e.GET("/metrics", metrics)
	}
	s.e = e
	s.api = e.Group("", RequireBearer(cfg.Token))
	return s
}

// API returns the group of routes behind "Authorization: Bearer
// ADMIN_TOKEN"; with ADMIN_TOKEN unset they answer 404.
func (s *Server) API() *echo.Group { return s.api }

// Echo returns the listener's echo instance, for routes that authenticate
// on their own. Handlers return errors; those with HTTPStatus() int and
// PublicMessage() string methods choose their answer (see Error).
func (s *Server) Echo() *echo.Echo { return s.e }

// Handler returns the HTTP handler of every admin route.
func (s *Server) Handler() http.Handler { return s.e }

// Serve answers on ln until ctx is done, then lets in-flight requests
// finish within Config.ShutdownTimeout. It returns nil after a clean
// shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	s.log.Info("admin listening", zap.String("addr", ln.Addr().String()), zap.Bool("admin_api", s.cfg.Token != ""))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		_ = srv.Close()
		err = fmt.Errorf("admin: shutdown: %w", err)
	}
	<-errc // http.ErrServerClosed
	return err
}

// Errors the middleware answers.
var (
	// ErrDisabled answers every API() route while ADMIN_TOKEN is unset: 404
	// rather than 503, since the API is off by configuration, not down.
	ErrDisabled = &Error{Status: http.StatusNotFound, Message: "admin API disabled: ADMIN_TOKEN is not set"}
	// ErrUnauthorized answers a missing or wrong bearer token.
	ErrUnauthorized = &Error{Status: http.StatusUnauthorized, Message: "missing or wrong bearer token"}
)

// Error is an answer with a constant message (never ids or secrets).
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// HTTPStatus is the status the error answers.
func (e *Error) HTTPStatus() int { return e.Status }

// PublicMessage is the text the client sees.
func (e *Error) PublicMessage() string { return e.Message }

// RequireBearer lets a request through when its "Authorization: Bearer"
// token equals one of tokens (compared in constant time); 401 otherwise,
// 429 while its address has had too many wrong ones (Check, RealmAdmin).
// With no non-empty token it answers ErrDisabled (404) to every request.
func RequireBearer(tokens ...string) echo.MiddlewareFunc {
	var want [][sha256.Size]byte
	for _, t := range tokens {
		if t != "" {
			want = append(want, sha256.Sum256([]byte(t)))
		}
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if len(want) == 0 {
				return ErrDisabled
			}
			ok, err := CheckBearer(c.Request(), RealmAdmin, want)
			if err != nil {
				SetRetryAfter(c.Response().Header(), err)
				return err
			}
			if !ok {
				return ErrUnauthorized
			}
			return next(c)
		}
	}
}

// CheckBearer reports whether r's "Authorization: Bearer" token is one of
// those whose SHA-256 digests are want, under the listener's limit on wrong
// tokens in realm (Check). A request without the header is no guess: false,
// not counted.
func CheckBearer(r *http.Request, realm string, want [][sha256.Size]byte) (bool, error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return false, nil
	}
	return Check(r, realm, auth, func() bool { return bearerMatches(auth, want) })
}

// bearerMatches compares digests, so that the time taken depends on neither
// token's length; every token is compared, so not on which one matched.
func bearerMatches(header string, want [][sha256.Size]byte) bool {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := false
	for i := range want {
		if hmac.Equal(got[:], want[i][:]) {
			match = true
		}
	}
	return match
}

// statusError is an error that chooses its answer.
type statusError interface {
	error
	HTTPStatus() int
	PublicMessage() string
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// handleError is the one place errors of admin routes become answers.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := http.StatusInternalServerError, "internal error"
	var se statusError
	var ee *echo.HTTPError
	switch {
	case errors.As(err, &se):
		status, msg = se.HTTPStatus(), se.PublicMessage()
	case errors.As(err, &ee):
		status, msg = ee.Code, http.StatusText(ee.Code)
	}
	switch {
	case status == http.StatusServiceUnavailable:
		s.log.Warn("admin request unavailable", zap.String("route", c.Path()), zap.Error(err))
	case status >= 500:
		s.log.Error("admin request failed", zap.String("route", c.Path()), zap.Int("status_code", status), zap.Error(err))
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

// recoverPanic turns a handler panic into a 500 without the request.
func recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = fmt.Errorf("admin: panic in handler: %v", r)
			}
		}()
		return next(c)
	}
}
