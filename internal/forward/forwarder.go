package forward

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/jsstream"
	"github.com/ctmpipe/ctmpipe/internal/outbound"
)

// pollEvery is how often a destination's pending count and lag are read.
const pollEvery = 5 * time.Second

// Forwarder delivers the bodies of stream FORWARD to every destination.
// Each destination has its own durable consumer, HTTP client and workers,
// so one's backlog or outage never delays another, nor ingest's answers.
type Forwarder struct {
	js      jetstream.JetStream
	cfg     Config
	dests   []*dest
	log     *zap.Logger
	m       *metrics
	backoff outbound.Backoff
	// Now defaults to time.Now; tests may set it before Run.
	Now func() time.Time
}

// dest is a destination while the Forwarder runs.
type dest struct {
	destination
	client  *http.Client
	failing atomic.Bool // its last attempt failed: log the change only
}

// New returns a Forwarder for cfg's destinations, its metrics registered
// with reg (nil: none). Run starts it.
func New(js jetstream.JetStream, cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Forwarder, error) {
	cfg.setDefaults()
	ds, err := parseDestinations(cfg.URLs)
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, errors.New("forward: no FORWARD_URLS")
	}
	f := &Forwarder{
		js: js, cfg: cfg, log: log.With(zap.String("component", "forward")),
		backoff: outbound.Backoff{Min: cfg.RetryMin, Max: cfg.RetryMax},
		Now:     time.Now,
	}
	for _, d := range ds {
		f.dests = append(f.dests, &dest{destination: d, client: outbound.NewClient(cfg.Concurrency, cfg.Timeout)})
	}
	if f.m, err = newMetrics(reg, f.dests); err != nil {
		return nil, fmt.Errorf("forward: metrics: %w", err)
	}
	return f, nil
}

// Run delivers until ctx is done, then lets the posts in flight finish
// (each bounded by FORWARD_TIMEOUT) and returns nil. NATS being away is
// waited out, not returned.
func (f *Forwarder) Run(ctx context.Context) error {
	for _, d := range f.dests {
		f.log.Info("forwarding", zap.String("host", d.host), zap.String("consumer", d.consumer()))
	}
	f.warnStale(ctx)
	var wg sync.WaitGroup
	for _, d := range f.dests {
		wg.Go(func() { f.runDest(ctx, d) })
	}
	wg.Wait()
	return nil
}

// warnStale names the consumers of destinations no longer configured. They
// are not deleted here (another ingest may still have the URL, during a
// rolling change), but FORWARD keeps every body for them until its MaxAge.
func (f *Forwarder) warnStale(ctx context.Context) {
	mine := map[string]bool{}
	for _, d := range f.dests {
		mine[d.consumer()] = true
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	s, err := f.js.Stream(ctx, StreamForward)
	if err != nil {
		return // absent or NATS away: nothing to say yet
	}
	names := s.ConsumerNames(ctx)
	for name := range names.Name() {
		if strings.HasPrefix(name, "fwd-") && !mine[name] {
			f.log.Warn("forward consumer of a destination no longer in FORWARD_URLS; FORWARD keeps bodies for it until they age out: delete it (nats consumer rm "+StreamForward+" <name>) if it is gone for good",
				zap.String("consumer", name))
		}
	}
}

// runDest consumes for d, starting again (after a pause) whenever its
// consumer cannot be set up or stops, e.g. deleted by an operator.
func (f *Forwarder) runDest(ctx context.Context, d *dest) {
	for failures := 1; ctx.Err() == nil; failures++ {
		err := f.consume(ctx, d)
		if ctx.Err() != nil {
			return
		}
		f.log.Warn("forward consumer stopped; starting it again", zap.String("host", d.host), zap.Error(err))
		t := time.NewTimer(outbound.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}.Delay(failures))
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// consume sets up d's consumer and hands its messages to at most
// FORWARD_CONCURRENCY workers until ctx is done or the consumer fails.
func (f *Forwarder) consume(ctx context.Context, d *dest) error {
	if err := ensureStream(ctx, f.js, forwardStream(f.cfg.MaxAge, f.cfg.Replicas), true, f.log); err != nil {
		return err
	}
	if err := ensureStream(ctx, f.js, jsstream.DLQ(f.cfg.Replicas), false, f.log); err != nil {
		return err
	}
	// CreateOrUpdate, so that a changed FORWARD_TIMEOUT reaches AckWait.
	cons, err := f.js.CreateOrUpdateConsumer(ctx, StreamForward, consumerConfig(d.destination, f.cfg.Timeout))
	if err != nil {
		return fmt.Errorf("consumer %s: %w", d.consumer(), err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(f.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("consume %s: %w", d.consumer(), err)
	}
	defer it.Stop()
	var wg sync.WaitGroup
	defer wg.Wait() // before it.Stop: in-flight posts finish and ack
	pctx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	wg.Go(func() { f.poll(pctx, d, cons) })

	sem := make(chan struct{}, f.cfg.Concurrency)
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("consume %s: %w", d.consumer(), err)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f.handle(context.WithoutCancel(ctx), d, m)
		})
	}
}
