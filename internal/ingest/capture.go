package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fastjson"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/jsstream"
	"github.com/ctmpipe/ctmpipe/internal/logging"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// The capture stream and the headers of each captured body; cmd/replay
// reads them back.
const (
	CaptureStream      = "WEBHOOKS"
	CaptureSubjects    = "webhooks.>"
	HeaderReceivedAt   = "Ctm-Received-At" // RFC 3339 with nanoseconds, UTC
	HeaderChannel      = "Ctm-Channel"     // whatsapp, messenger, instagram, onprem or unknown
	HeaderPath         = "Ctm-Path"        // /webhook or /webhook/onprem: where replay must post it
	capturePublishWait = 5 * time.Second   // ack timeout of one async publish
	captureMaxPending  = 256               // async publishes awaiting an ack
	captureRetryEvery  = 5 * time.Second   // stream creation retry while NATS is away
)

// Capture copies verified webhook bodies to the JetStream stream WEBHOOKS
// so that engineers can replay them. It never blocks or fails a webhook:
// bodies go through a bounded queue to one publisher goroutine (Run), and a
// full queue or an unreachable NATS drops them, counted in
// ingest_capture_total{outcome="dropped"}.
type Capture struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	log    *zap.Logger
	maxAge time.Duration
	// replicas is STREAM_REPLICAS: WEBHOOKS gets it when created.
	replicas int
	queue    chan captured
	ready    atomic.Bool // the stream exists as far as we know

	published, failed, dropped prometheus.Counter
}

// captured is one body waiting to be published.
type captured struct {
	ch   channel
	path string
	body []byte
	at   time.Time
}

// ConnectNATS connects to url for capture, reconnecting forever; when NATS
// is down at start it returns a connection that keeps trying, so ingest
// starts anyway. The caller closes it after Serve returns.
func ConnectNATS(url string, log *zap.Logger) (*nats.Conn, error) {
	log = log.With(zap.String("component", "capture"))
	nc, err := nats.Connect(url, append(logging.NATS(log), // nats.go's own errors through zap; those below win
		nats.Name("ctmpipe-ingest"),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		// No buffering while disconnected: capture drops instead, and
		// counts it, rather than holding bodies in memory.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // our own Close at shutdown
			}
			log.Warn("nats disconnected; captured bodies are dropped until it is back", zap.Error(err))
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats reconnected") }),
		nats.ConnectHandler(func(*nats.Conn) { log.Info("nats connected") }),
	)...)
	if err != nil {
		return nil, fmt.Errorf("capture: connect nats: %w", err)
	}
	if !nc.IsConnected() {
		log.Warn("nats unreachable at start; ingest runs and keeps reconnecting")
	}
	return nc, nil
}

// NewCapture returns a Capture publishing on nc into a stream kept for
// cfg.CaptureMaxAge, with a queue of cfg.CaptureQueue bodies. Its counter is
// registered with reg. Serve runs it; it does not own nc.
func NewCapture(nc *nats.Conn, cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Capture, error) {
	cfg.setDefaults()
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ingest_capture_total",
		Help: "Captured webhook bodies by outcome: published (acked by JetStream), failed (publish error or timeout), dropped (queue full or NATS away).",
	}, []string{"outcome"})
	if err := reg.Register(total); err != nil {
		return nil, fmt.Errorf("capture: register metrics: %w", err)
	}
	c := &Capture{
		nc:        nc,
		log:       log.With(zap.String("component", "capture")),
		maxAge:    cfg.CaptureMaxAge,
		replicas:  max(cfg.StreamReplicas, 1),
		queue:     make(chan captured, cfg.CaptureQueue),
		published: total.WithLabelValues("published"),
		failed:    total.WithLabelValues("failed"),
		dropped:   total.WithLabelValues("dropped"),
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(captureMaxPending),
		jetstream.WithPublishAsyncTimeout(capturePublishWait),
		jetstream.WithPublishAsyncAckHandler(func(jetstream.JetStream, *nats.Msg, *jetstream.PubAck) { c.published.Inc() }),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			c.failed.Inc()
			if errors.Is(err, jetstream.ErrNoStreamResponse) {
				c.ready.Store(false) // the stream vanished: create it again
			}
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("capture: jetstream: %w", err)
	}
	c.js = js
	return c, nil
}

// offer queues a copy of body without ever blocking. A nil Capture (capture
// off) ignores it.
func (c *Capture) offer(ch channel, path string, body []byte) {
	if c == nil {
		return
	}
	select {
	case c.queue <- captured{ch: ch, path: path, body: bytes.Clone(body), at: time.Now()}:
	default:
		c.dropped.Inc()
	}
}

// Run publishes queued bodies until ctx is done, then publishes what is
// still queued and waits briefly for the acks. It creates or updates the
// stream first, and again whenever NATS comes back without it.
func (c *Capture) Run(ctx context.Context) {
	p := &fastjson.Parser{}
	var lastTry time.Time
	ensure := func() {
		if c.ready.Load() || time.Since(lastTry) < captureRetryEvery || !c.nc.IsConnected() {
			return
		}
		lastTry = time.Now()
		if err := c.ensureStream(ctx); err != nil {
			c.log.Warn("capture stream not ready; bodies are dropped until it is", zap.Error(err))
			return
		}
		c.ready.Store(true)
	}
	ensure()
	for {
		select {
		case m := <-c.queue:
			ensure()
			c.publish(p, m)
		case <-ctx.Done():
			c.flush(p)
			return
		}
	}
}

// flush publishes the bodies queued before shutdown, within a bound.
func (c *Capture) flush(p *fastjson.Parser) {
	deadline := time.After(capturePublishWait)
	for drained := false; !drained; {
		select {
		case m := <-c.queue:
			c.publish(p, m)
		default:
			drained = true
		}
	}
	select {
	case <-c.js.PublishAsyncComplete():
	case <-deadline:
		c.log.Warn("capture: acks still pending at shutdown", zap.Int("pending", c.js.PublishAsyncPending()))
	}
}

// ensureStream creates the WEBHOOKS stream, or updates its retention. An
// existing stream keeps its replica count (jsstream.Check logs another one).
func (c *Capture) ensureStream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, capturePublishWait)
	defer cancel()
	cfg := jetstream.StreamConfig{
		Name:        CaptureStream,
		Description: "Verified Meta webhook bodies (message text and names redacted) for replay.",
		Subjects:    []string{CaptureSubjects},
		Storage:     jetstream.FileStorage,
		MaxAge:      c.maxAge,
		Replicas:    c.replicas,
	}
	if s, err := c.js.Stream(ctx, CaptureStream); err == nil {
		if have := s.CachedInfo().Config; !jsstream.Check(c.log, have, c.replicas) {
			cfg.Replicas = have.Replicas
		}
	}
	if _, err := c.js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("capture: create stream %s: %w", CaptureStream, err)
	}
	return nil
}

// publish redacts m and publishes it asynchronously; the ack and error
// handlers count the outcome.
func (c *Capture) publish(p *fastjson.Parser, m captured) {
	if !c.ready.Load() || !c.nc.IsConnected() {
		c.dropped.Inc()
		return
	}
	body, err := webhook.Redact(p, m.body)
	if err != nil {
		// Only bodies fastjson takes and JSON does not (NaN, say) get
		// here; publishing the unredacted copy is never an option.
		c.failed.Inc()
		c.log.Warn("capture: body not redactable; not published", zap.String("channel", m.ch.String()))
		return
	}
	msg := &nats.Msg{
		Subject: "webhooks." + m.ch.String(),
		Data:    body,
		Header: nats.Header{
			HeaderReceivedAt: []string{m.at.UTC().Format(time.RFC3339Nano)},
			HeaderChannel:    []string{m.ch.String()},
			HeaderPath:       []string{m.path},
		},
	}
	if _, err := c.js.PublishMsgAsync(msg); err != nil {
		c.failed.Inc()
	}
}
