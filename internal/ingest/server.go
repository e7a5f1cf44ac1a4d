// Package ingest is the webhook receiver: it verifies Meta's deliveries,
// extracts the ad clicks and records them in the attribution store, answering
// with the status codes Meta's retries depend on (200 only after the write).
// It also serves health, readiness, metrics and the admin context lookup, and
// can copy verified bodies to JetStream for replay (capture.go).
//
// cmd/ingest wires it; cmd/all-in-one runs it next to the sender.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// recorder writes touches; one call is one store round trip. The store is
// one; the coalescer in front of it is another (coalesce.go).
type recorder interface {
	Record(ctx context.Context, touches []attribution.Touch) error
}

// Deps are the collaborators a Server uses.
type Deps struct {
	// Logger receives the service's logs (required).
	Logger *zap.Logger
	// Store holds the contexts (required).
	Store *attribution.Store
	// Registerer receives the ingest_* metrics; a new registry when nil.
	Registerer prometheus.Registerer
	// Gatherer serves GET /metrics; Registerer when nil and it is a Gatherer.
	Gatherer prometheus.Gatherer
	// Capture, when not nil, receives a copy of every verified body. Serve
	// runs its publisher; whoever serves Handler() without Serve must run
	// Capture.Run alongside.
	Capture *Capture
}

// Server is the ingest HTTP service.
type Server struct {
	cfg      Config
	log      *zap.Logger
	store    *attribution.Store
	rec      recorder
	verifier *webhook.Verifier
	m        *metrics
	capture  *Capture
	gatherer prometheus.Gatherer
	bufs     sync.Pool // *[]byte request bodies
	e        *echo.Echo
}

// New returns a Server for cfg. It registers the metrics with
// deps.Registerer and logs a summary of the configuration (secrets only as
// *_set booleans).
func New(cfg Config, deps Deps) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if deps.Logger == nil || deps.Store == nil {
		return nil, errors.New("ingest: Deps.Logger and Deps.Store are required")
	}
	reg, gat := deps.Registerer, deps.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg = r
		if gat == nil {
			gat = r
		}
	}
	if gat == nil {
		g, ok := reg.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("ingest: Deps.Gatherer is required when Deps.Registerer is not a Gatherer")
		}
		gat = g
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      deps.Logger.With(zap.String("component", "ingest")),
		store:    deps.Store,
		rec:      newCoalescer(deps.Store, cfg.StoreTimeout, m.storeDuration, m.batchSize),
		m:        m,
		capture:  deps.Capture,
		gatherer: gat,
	}
	secrets := make([][]byte, len(cfg.AppSecrets))
	for i, sec := range cfg.AppSecrets {
		secrets[i] = []byte(sec)
	}
	s.verifier = webhook.NewVerifier(secrets)
	s.bufs.New = func() any { b := make([]byte, 0, 16<<10); return &b }
	s.e = s.routes()
	s.log.Info("ingest configured",
		zap.Int("app_secrets", len(cfg.AppSecrets)),
		zap.Bool("app_secret_set", len(cfg.AppSecrets) > 0),
		zap.Bool("verify_token_set", cfg.VerifyToken != ""),
		zap.Bool("admin_token_set", cfg.AdminToken != ""),
		zap.Bool("onprem_secret_set", cfg.OnPremSecret != ""),
		zap.Bool("onprem_waba_id_set", cfg.OnPremWABAID != ""),
		zap.Bool("redis_url_set", cfg.RedisURL != ""),
		zap.Bool("nats_url_set", cfg.NATSURL != ""),
		zap.Bool("capture", deps.Capture != nil),
		zap.Duration("context_ttl", cfg.ContextTTL),
		zap.Int64("body_limit", cfg.BodyLimit),
		zap.Duration("store_timeout", cfg.StoreTimeout),
		zap.Duration("shutdown_timeout", cfg.ShutdownTimeout),
	)
	return s, nil
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(s.recoverPanic)
	e.GET("/webhook", s.timed(routeHandshake, s.handshake))
	e.POST("/webhook", s.timed(routeWebhook, s.postWebhook))
	e.POST("/webhook/onprem", s.timed(routeOnPrem, s.postOnPrem))
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{})))
	e.GET("/v1/contexts/:channel/:business_id/:user_id", s.timed(routeContexts, s.getContext))
	return e
}

// Handler returns the HTTP handler of every route.
func (s *Server) Handler() http.Handler { return s.e }

// Serve answers HTTP on ln until ctx is done, then stops accepting, lets
// in-flight requests finish within Config.ShutdownTimeout, and flushes the
// capture publisher (which it runs meanwhile) last. It returns nil after a
// clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	captureCtx, stopCapture := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCapture()
	var wg sync.WaitGroup
	if s.capture != nil {
		wg.Go(func() { s.capture.Run(captureCtx) })
	}
	errc := make(chan error, 1)
	s.log.Info("listening", zap.String("addr", ln.Addr().String()))
	go func() { errc <- srv.Serve(ln) }()

	var err error
	select {
	case err = <-errc:
		err = fmt.Errorf("ingest: serve: %w", err)
	case <-ctx.Done():
		s.log.Info("shutting down", zap.Duration("timeout", s.cfg.ShutdownTimeout))
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		if serr := srv.Shutdown(sctx); serr != nil {
			err = fmt.Errorf("ingest: shutdown: %w", serr)
			_ = srv.Close()
		}
		cancel()
		<-errc // http.ErrServerClosed
	}
	stopCapture()
	wg.Wait()
	if err == nil {
		s.log.Info("stopped")
	}
	return err
}

// timed records the duration of a route's requests.
func (s *Server) timed(route int, h echo.HandlerFunc) echo.HandlerFunc {
	obs := s.m.reqDuration[route]
	return func(c echo.Context) error {
		start := time.Now()
		err := h(c)
		obs.Observe(time.Since(start).Seconds())
		return err
	}
}

// recoverPanic turns a handler panic into a 500 and one log line, without
// the request (it may hold personal data).
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = fmt.Errorf("ingest: panic in handler: %v", r)
			}
		}()
		return next(c)
	}
}

func (s *Server) healthz(c echo.Context) error { return c.String(http.StatusOK, "ok\n") }

// readyz answers 200 when the store answers a PING, else 503, so that a load
// balancer stops sending webhooks that could only get 503.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return storeError(err)
	}
	return c.String(http.StatusOK, "ok\n")
}
