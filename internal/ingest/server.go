// Package ingest is the webhook receiver: it verifies Meta's deliveries,
// extracts the ad clicks and records them in the attribution store, answering
// with the status codes Meta's retries depend on (200 only after the write).
// Its webhook listener, the one that faces the internet, serves the webhook
// paths, health and readiness only; the admin context lookup is registered
// on the admin listener (internal/admin) with AdminRoutes. It can copy
// verified bodies to JetStream for replay (capture.go).
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
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/internal/startup"
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
	// Registerer receives the ingest_* metrics (served by the admin
	// listener); a new registry when nil.
	Registerer prometheus.Registerer
	// Capture, when not nil, receives a copy of every verified body. Serve
	// runs its publisher; whoever serves Handler() without Serve must run
	// Capture.Run alongside.
	Capture *Capture
	// Forward, when not nil, stores every verified /webhook body for
	// forwarding (internal/forward's Enqueuer) before the answer: 200 only
	// once both it and the store write succeeded.
	Forward Enqueuer
	// AutoEvents, when not nil, publishes the automatic events of a
	// verified /webhook delivery after its contexts are written, before
	// the 200.
	AutoEvents AutoPublisher
	// Policies, when not nil, says which businesses keep the first click
	// of a conversation (RegistryPolicies); nil: every business keeps the
	// latest.
	Policies Policies
	// Started, when not nil, gates /readyz: while it returns an error
	// (cmd/ingest still waits for Redis or NATS at start) /readyz answers
	// 503 "starting".
	Started func() error
}

// AutoPublisher stores Meta's automatic events as conversions
// (internal/autoevents, wired by internal/services). An error means that
// not every event was stored: the answer is then 503 and Meta retries.
type AutoPublisher interface {
	Publish(ctx context.Context, events []webhook.AutomaticEvent) (AutoResult, error)
}

// AutoResult is what a publish of automatic events did: events stored now
// and before (Duplicates), of businesses that do not report them
// (Disabled), without a click id (NoClick), and those that break the
// conversion contract (by event_id, a hash, and the rule).
type AutoResult struct {
	Published, Duplicates, Disabled, NoClick int
	Invalid                                  []AutoInvalid
}

// AutoInvalid is an automatic event that cannot be reported.
type AutoInvalid struct{ EventID, Reason string }

// Enqueuer keeps a verified body and its signature headers durably for
// forwarding (internal/forward, wired by internal/services). Its errors
// wrap ErrForwardTooLarge for a body no retry can store, else
// ErrForwardQueue when the queue is away.
type Enqueuer interface {
	Enqueue(ctx context.Context, body []byte, header http.Header) error
}

// The errors an Enqueuer's wrap.
var (
	ErrForwardTooLarge = errors.New("ingest: body too large to forward")
	ErrForwardQueue    = errors.New("ingest: body not stored for forwarding")
)

// Server is the ingest HTTP service.
type Server struct {
	cfg      Config
	log      *zap.Logger
	store    *attribution.Store
	rec      recorder
	ids      idChanger
	idm      idChangeMetrics
	policies Policies
	verifier *webhook.Verifier
	m        *metrics
	stats    *stats // webhooks and clicks per minute and business-hour (stats.go)
	alerts   alerts
	capture  *Capture
	forward  Enqueuer
	auto     AutoPublisher
	started  func() error // Deps.Started; nil: started
	budget   bodyBudget
	bodies   sync.Pool // *body
	conns    atomic.Pointer[connLimit]
	guard    *admin.Guard // wrong ONPREM_SECRETs per address
	e        *echo.Echo
	h        http.Handler // e behind the response deadline
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
	reg := deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:      cfg,
		log:      deps.Logger.With(zap.String("component", "ingest")),
		store:    deps.Store,
		capture:  deps.Capture,
		forward:  deps.Forward,
		auto:     deps.AutoEvents,
		started:  deps.Started,
		bodies:   newBodyPool(),
		ids:      deps.Store,
		policies: deps.Policies,
	}
	s.budget.max = cfg.MaxBodyBytesInFlight
	m, err := newMetrics(reg, gauges{
		bodyBytes: func() float64 { return float64(s.budget.used.Load()) },
		bodies:    func() float64 { return float64(s.budget.bodies.Load()) },
		conns: func() float64 {
			if l := s.conns.Load(); l != nil {
				return float64(l.open())
			}
			return 0
		},
	})
	if err != nil {
		return nil, err
	}
	s.m = m
	if s.idm, err = newIDChangeMetrics(reg); err != nil {
		return nil, fmt.Errorf("ingest: register metrics: %w", err)
	}
	s.alerts = newAlerts(s.log)
	s.guard = admin.NewGuard(s.log, nil)
	s.stats = newStats(deps.Store.Client(), s.log, m.statsDropped)
	s.rec = newCoalescer(deps.Store, cfg.StoreTimeout, m.storeDuration, m.batchSize)
	secrets := make([][]byte, len(cfg.AppSecrets))
	for i, sec := range cfg.AppSecrets {
		secrets[i] = []byte(sec)
	}
	s.verifier = webhook.NewVerifier(secrets)
	s.e = s.routes()
	s.h = s.withDeadline(s.e)
	startup.GraphVersion(s.log, cfg.GraphVersion, time.Now())
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
		zap.Bool("forward", deps.Forward != nil),
		zap.Bool("automatic_events_publisher", deps.AutoEvents != nil), // on for all (AUTOMATIC_EVENTS) or per business (registry)
		zap.Bool("attribution_policies", deps.Policies != nil),         // first_touch per business (registry)
		zap.Duration("context_ttl", cfg.ContextTTL),
		zap.Int64("body_limit", cfg.BodyLimit),
		zap.Int64("max_body_bytes_in_flight", cfg.MaxBodyBytesInFlight),
		zap.Int("max_connections", cfg.MaxConnections),
		zap.Int("max_connections_per_address", cfg.MaxConnectionsPerAddress),
		zap.Duration("first_byte_timeout", cfg.FirstByteTimeout),
		zap.Duration("response_deadline", cfg.ResponseDeadline),
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
	e.POST("/webhook", s.timed(routeWebhook, s.traced("webhook", s.postWebhook)))
	e.POST("/webhook/onprem", s.timed(routeOnPrem, s.traced("webhook", s.postOnPrem)))
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	return e
}

// AdminRoutes registers the admin API of ingest (the context lookup) on api,
// a group of the admin listener behind ADMIN_TOKEN (internal/admin).
func (s *Server) AdminRoutes(api *echo.Group) {
	api.GET("/v1/contexts/:channel/:business_id/:user_id", s.timed(routeContexts, s.getContext))
}

// Handler returns the handler of the webhook listener: the webhook paths,
// /healthz and /readyz, each answered within RESPONSE_DEADLINE. Serve
// writes the statistics it counts (stats.go); served without Serve, it
// counts them in memory only.
func (s *Server) Handler() http.Handler { return s.h }

// Serve answers HTTP on ln until ctx is done, then stops accepting, lets
// in-flight requests finish within Config.ShutdownTimeout, and flushes the
// capture publisher (which it runs meanwhile) last. Meanwhile it writes the
// statistics once a second, and once more after the last request. It
// returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second, // the body's own bound is RESPONSE_DEADLINE
		WriteTimeout:      30 * time.Second,
		// Between requests; while the listener is full, idle connections
		// are closed sooner to make room (conns.go).
		IdleTimeout: 2 * time.Minute,
		// Meta's headers are a few hundred bytes; Go's default of 1 MB
		// would let each connection hold that much before any check.
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       zap.NewStdLog(s.log.Named("http")),
	}
	lim := newConnLimit(ln, s.cfg.MaxConnections, s.cfg.FirstByteTimeout, s.cfg.MaxConnectionsPerAddress,
		func(reason string) { s.m.connsClosed.WithLabelValues(reason).Inc() })
	srv.ConnState = lim.connState
	s.conns.Store(lim)
	ln = lim
	captureCtx, stopCapture := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCapture()
	statsCtx, stopStats := context.WithCancel(context.WithoutCancel(ctx))
	defer stopStats()
	var wg sync.WaitGroup
	wg.Go(func() { s.stats.run(statsCtx) })
	if s.capture != nil {
		wg.Go(func() { s.capture.Run(captureCtx) })
	}
	errc := make(chan error, 1)
	s.log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("listener", "webhook"))
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
	stopStats() // after the last answer: its counts are in the last flush
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

// readyz answers 200 when the store answers a PING and has the replicas
// REDIS_MIN_REPLICAS asks for, else 503, so that a load balancer stops
// sending webhooks that could only get 503.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), time.Second)
	defer cancel()
	if s.started != nil {
		if err := s.started(); err != nil {
			return &httpError{status: http.StatusServiceUnavailable, msg: "starting", cause: err}
		}
	}
	if err := s.store.Ping(ctx); err != nil {
		return storeError(err)
	}
	// Writes would time out waiting for replicas that are not there.
	if err := s.cfg.Replicas.Ready(ctx, s.store.Client()); err != nil {
		return &httpError{status: http.StatusServiceUnavailable, msg: "redis has fewer replicas connected than REDIS_MIN_REPLICAS", cause: err}
	}
	return c.String(http.StatusOK, "ok\n")
}
