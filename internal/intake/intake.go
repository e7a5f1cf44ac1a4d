// Package intake takes conversions over HTTP: POST /v1/conversions on the
// admin listener, for order systems, CRMs and no-code tools that speak HTTP
// rather than NATS. Each item is checked with pkg/conversion, the check the
// sender makes, and published as it was sent to JetStream subject
// conversions.<channel> with Nats-Msg-Id = event_id, exactly as an order
// system publishing to NATS would (cmd/publish). The answer comes only after
// JetStream acked every accepted item, so a 202 means stored; anything else
// means retry the whole body, and JetStream's Nats-Msg-Id deduplication
// turns what was stored already into duplicates, never into a second send.
//
// The intake never creates stream CONVERSIONS. The sender owns its
// configuration (duplicate window, retention) and keeps a stream it finds as
// it is, so a stream created here with another configuration would stay;
// while the stream is absent the intake answers 503 saying the sender has
// not created it yet.
//
// docs/intake.md describes the API for operators.
package intake

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/internal/tracing"
)

// Path is the route of the intake. Mount the Handler for POST there.
const Path = "/v1/conversions"

// Deps are the intake's collaborators, opened and closed by the caller.
type Deps struct {
	// Log receives the intake's logs (required).
	Log *zap.Logger
	// NATS is the connection conversions are published on; required when
	// the intake is enabled. The caller drains it at exit, after the
	// listener stopped.
	NATS *nats.Conn
	// Registerer takes the intake_* metrics; nil keeps them private.
	Registerer prometheus.Registerer
}

// Handler serves POST /v1/conversions. It is an http.Handler; with echo,
// mount it as e.POST(intake.Path, echo.WrapHandler(h)).
type Handler struct {
	cfg    Config
	log    *zap.Logger
	tokens [][sha256.Size]byte
	pub    publisher
	m      *metrics
	slots  chan struct{}
}

// New checks cfg and builds the Handler. With no token configured it builds
// one that answers 404, so the route can be mounted unconditionally.
func New(cfg Config, deps Deps) (*Handler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Log == nil {
		return nil, errors.New("intake: Deps.Log is required")
	}
	if cfg.Enabled() && deps.NATS == nil {
		return nil, errors.New("intake: INTAKE_TOKEN is set: Deps.NATS is required (set NATS_URL)")
	}
	reg := deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, log: deps.Log.With(zap.String("component", "intake")), m: m,
		slots: make(chan struct{}, cfg.Concurrency)}
	for _, t := range cfg.Tokens {
		h.tokens = append(h.tokens, sha256.Sum256([]byte(t)))
	}
	if cfg.Enabled() {
		// Every request's items can be in flight at once; a publish never
		// stalls on the client's own limit. The ack timeout frees what a
		// lost connection leaves pending.
		js, err := jetstream.New(deps.NATS,
			jetstream.WithPublishAsyncMaxPending(cfg.Concurrency*MaxItems),
			jetstream.WithPublishAsyncTimeout(cfg.AckTimeout))
		if err != nil {
			return nil, err
		}
		h.pub = js
	}
	h.log.Info("intake configured", zap.Bool("enabled", cfg.Enabled()), zap.Int("tokens", len(cfg.Tokens)),
		zap.Int64("body_limit", cfg.BodyLimit), zap.Duration("ack_timeout", cfg.AckTimeout),
		zap.Int("concurrency", cfg.Concurrency))
	return h, nil
}

// ServeHTTP answers POST /v1/conversions (see the package comment and
// docs/intake.md for the statuses).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var span trace.Span
	if tracing.Enabled() {
		// A root of its own: a caller's traceparent is not trusted (anyone
		// with a token could join their trace to ours). Each published
		// message carries this span's context (publish).
		var ctx context.Context
		ctx, span = tracing.Tracer().Start(r.Context(), "intake.request", trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		r = r.WithContext(ctx)
	}
	status, body, err := h.serve(w, r)
	if err != nil {
		status, body = h.failure(w, err)
	}
	if span != nil {
		span.SetAttributes(attribute.Int(tracing.AttrStatusCode, status))
		if res, ok := body.(Result); ok {
			span.SetAttributes(attribute.Int(tracing.AttrAccepted, res.Accepted), attribute.Int(tracing.AttrDuplicates, res.Duplicates),
				attribute.Int(tracing.AttrInvalid, len(res.Invalid)))
		}
		if status >= 500 {
			tracing.Fail(span, "conversions not taken")
		}
	}
	if werr := writeJSON(w, status, body); werr != nil {
		h.log.Debug("write answer", zap.Error(werr)) // the client left
	}
	h.m.requests.WithLabelValues(strconv.Itoa(status)).Inc()
	h.m.duration.Observe(time.Since(start).Seconds())
}

// serve handles one request and returns the answer: a status and its JSON,
// or an error that failure turns into one.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if !h.cfg.Enabled() {
		return 0, nil, errDisabled // off by configuration, not down: 404 rather than 503
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return 0, nil, &answer{status: http.StatusMethodNotAllowed, msg: "use POST"}
	}
	if ok, err := h.authorized(r); err != nil {
		admin.SetRetryAfter(w.Header(), err)
		return 0, nil, &answer{status: http.StatusTooManyRequests, msg: err.Error()}
	} else if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="intake"`)
		return 0, nil, errAuth
	}
	if r.ContentLength > h.cfg.BodyLimit {
		return 0, nil, tooLarge(h.cfg.BodyLimit)
	}
	// The body is read before a slot is taken, within INTAKE_ACK_TIMEOUT:
	// four slow uploads (a byte every 2 s) holding the four slots while
	// they trickled in made every other request wait and get 503. A body
	// still arriving at the deadline is answered 408. (Outside a real
	// server, a recorder, the deadline cannot be set: the listener's own
	// read timeout bounds it.)
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.cfg.AckTimeout))
	body, err := readBody(r.Body, h.cfg.BodyLimit)
	if err != nil {
		return 0, nil, err
	}
	// The deadline covers the wait for a slot and the acks.
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.AckTimeout)
	defer cancel()
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-ctx.Done():
		return 0, nil, errBusy
	}
	items, err := split(body, isNDJSON(r.Header.Get("Content-Type")))
	if err != nil {
		return 0, nil, err
	}
	valid, res := check(items)
	trace.SpanFromContext(ctx).SetAttributes(attribute.Int(tracing.AttrEventCount, len(valid)))
	h.m.conversions.WithLabelValues(resultInvalid).Add(float64(len(res.Invalid)))
	if len(valid) == 0 {
		return http.StatusBadRequest, errorBody{Error: errNoneValid.msg, Invalid: res.Invalid}, nil
	}
	if err := h.publish(ctx, valid, &res); err != nil {
		return 0, nil, err
	}
	h.m.conversions.WithLabelValues(resultAccepted).Add(float64(res.Accepted))
	h.m.conversions.WithLabelValues(resultDuplicate).Add(float64(res.Duplicates))
	h.log.Debug("conversions taken", zap.Int("accepted", res.Accepted), zap.Int("duplicates", res.Duplicates),
		zap.Int("invalid", len(res.Invalid)))
	return http.StatusAccepted, res, nil
}

// failure returns err's answer. What an operator must see (NATS away, a
// misconfigured stream) is logged; client errors are only counted, since
// logging each would let a caller flood the log.
func (h *Handler) failure(w http.ResponseWriter, err error) (int, errorBody) {
	a := &answer{status: http.StatusInternalServerError, msg: "internal error", cause: err}
	errors.As(err, &a)
	switch {
	case a.status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
		h.log.Warn("conversions not taken", zap.Int("status_code", a.status), zap.Error(err))
	case a.status >= 500:
		h.log.Error("conversions not taken", zap.Int("status_code", a.status), zap.Error(err))
	default:
		h.log.Debug("request rejected", zap.Int("status_code", a.status), zap.String("reason", a.msg))
	}
	return a.status, errorBody{Error: a.msg}
}

// authorized checks "Authorization: Bearer <token>" against every token in
// constant time (admin.CheckBearer). On the admin listener wrong tokens are
// limited per address (RealmIntake): the error is then a 429's.
func (h *Handler) authorized(r *http.Request) (bool, error) {
	return admin.CheckBearer(r, admin.RealmIntake, h.tokens)
}
