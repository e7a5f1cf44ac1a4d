package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/jsstream"
	"github.com/ctmpipe/ctmpipe/internal/outbound"
)

// Deliverer posts the notifications of stream NOTIFY to every destination,
// each on its own durable consumer: one receiver's outage never delays
// another's. Several processes may run one (the consumers are shared).
type Deliverer struct {
	js       jetstream.JetStream
	cfg      Config
	dests    []*dest
	log      *zap.Logger
	backoff  outbound.Backoff
	outcomes *prometheus.CounterVec
	// Now defaults to time.Now; tests may set it before Run.
	Now func() time.Time
}

type dest struct {
	outbound.Destination
	client *http.Client
}

// Outcomes of notify_deliveries_total.
const (
	outcomeDelivered = "delivered"
	outcomeRetried   = "retried"
	outcomeDead      = "dead_letter"
)

// NewDeliverer returns a Deliverer for cfg, nil when cfg has no
// destination; its counter is registered with reg (nil: none; one already
// registered, by the other half of an all-in-one, is shared).
func NewDeliverer(js jetstream.JetStream, cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Deliverer, error) {
	if !cfg.Enabled() {
		return nil, cfg.Validate()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if js == nil {
		return nil, errors.New("notify: NOTIFY_URLS needs NATS (NATS_URL)")
	}
	cfg.setDefaults()
	ds, _ := outbound.ParseDestinations("NOTIFY_URLS", cfg.URLs)
	d := &Deliverer{js: js, cfg: cfg, log: log.With(zap.String("component", "notify")),
		backoff: outbound.Backoff{Min: cfg.RetryMin, Max: cfg.RetryMax}, Now: time.Now}
	for _, x := range ds {
		d.dests = append(d.dests, &dest{Destination: x, client: outbound.NewClient(2, cfg.Timeout)})
	}
	d.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "notify_deliveries_total",
		Help: "Notification attempts by destination host and outcome (delivered, retried, dead_letter).",
	}, []string{"destination", "outcome"})
	if reg != nil {
		if err := reg.Register(d.outcomes); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("notify: metrics: %w", err)
			}
			d.outcomes = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return d, nil
}

// Run delivers until ctx is done, then lets the post in flight finish.
// NATS being away is waited out, not returned.
func (d *Deliverer) Run(ctx context.Context) error {
	if d == nil {
		return nil
	}
	var wg sync.WaitGroup
	for _, x := range d.dests {
		d.log.Info("notifying", zap.String("host", x.Host), zap.String("consumer", consumerName(x.Destination)))
		wg.Go(func() { d.runDest(ctx, x) })
	}
	wg.Wait()
	return nil
}

func (d *Deliverer) runDest(ctx context.Context, x *dest) {
	for failures := 1; ctx.Err() == nil; failures++ {
		err := d.consume(ctx, x)
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("notify consumer stopped; starting it again", zap.String("host", x.Host), zap.Error(err))
		t := time.NewTimer(outbound.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}.Delay(failures))
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func (d *Deliverer) consume(ctx context.Context, x *dest) error {
	if _, err := jsstream.Ensure(ctx, d.js, notifyStream(d.cfg.MaxAge, d.cfg.Replicas), d.log); err != nil {
		return err
	}
	if _, err := jsstream.Ensure(ctx, d.js, jsstream.DLQ(d.cfg.Replicas), d.log); err != nil {
		return err
	}
	cons, err := d.js.CreateOrUpdateConsumer(ctx, StreamNotify, consumerConfig(x.Destination, d.cfg.Timeout))
	if err != nil {
		return fmt.Errorf("consumer %s: %w", consumerName(x.Destination), err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1))
	if err != nil {
		return fmt.Errorf("consume %s: %w", consumerName(x.Destination), err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("consume %s: %w", consumerName(x.Destination), err)
		}
		d.handle(context.WithoutCancel(ctx), x, m)
	}
}

// handle makes one attempt to deliver m to x and settles m; the one place
// that decides a notification's fate for a destination:
//   - 2xx: Ack.
//   - failed, younger than NOTIFY_MAX_AGE: NakWithDelay by the backoff.
//   - failed at or past NOTIFY_MAX_AGE: dead letter on dlq.notify, then Ack
//     (Nak when the dead letter is not stored: tried again).
//
// Ack and Nak are fire-and-forget: one lost is a redelivery after AckWait.
func (d *Deliverer) handle(ctx context.Context, x *dest, m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		_ = m.Term()
		return
	}
	attempt := int(md.NumDelivered)
	h := http.Header{}
	h.Set(headerContentType, "application/json")
	h.Set(HeaderSignature, Sign(d.cfg.Secret, m.Data()))
	h.Set(HeaderID, m.Headers().Get(jetstream.MsgIDHeader))
	h.Set(HeaderType, m.Headers().Get(headerNotifyType))
	h.Set("User-Agent", "ctmpipe-notify/1")
	status, err := outbound.Post(ctx, x.client, x.URL, m.Data(), h, d.cfg.Timeout)
	fields := []zap.Field{zap.String("host", x.Host), zap.String("type", h.Get(HeaderType)), zap.Int("attempt", attempt), zap.Int("status_code", status)}
	if err == nil {
		_ = m.Ack()
		d.outcomes.WithLabelValues(x.Label, outcomeDelivered).Inc()
		d.log.Debug("notification delivered", fields...)
		return
	}
	fields = append(fields, zap.String("error", err.Error()))
	age := d.Now().Sub(md.Timestamp)
	if age >= d.cfg.MaxAge {
		d.deadLetter(ctx, x, m, md, attempt, err.Error(), fields)
		return
	}
	_ = m.NakWithDelay(min(d.backoff.Delay(attempt), d.cfg.MaxAge-age))
	d.outcomes.WithLabelValues(x.Label, outcomeRetried).Inc()
	d.log.Warn("notification not delivered; retrying with backoff", fields...)
}

// deadLetter stores m on dlq.notify (its Nats-Msg-Id the NOTIFY sequence
// and the destination, so a dead letter stored twice is dropped) and acks.
func (d *Deliverer) deadLetter(ctx context.Context, x *dest, m jetstream.Msg, md *jetstream.MsgMetadata, attempt int, text string, fields []zap.Field) {
	dl := nats.NewMsg(SubjectDeadLetter)
	dl.Data = m.Data()
	dl.Header.Set(jetstream.MsgIDHeader, strconv.FormatUint(md.Sequence.Stream, 10)+"-notify-"+x.ID)
	dl.Header.Set(headerReason, ReasonNotify)
	dl.Header.Set(headerError, outbound.HeaderValue(text))
	dl.Header.Set(headerTime, d.Now().UTC().Format(time.RFC3339))
	dl.Header.Set(headerPublished, md.Timestamp.UTC().Format(time.RFC3339Nano))
	dl.Header.Set(headerMsgID, m.Headers().Get(jetstream.MsgIDHeader))
	dl.Header.Set(headerNotifyType, m.Headers().Get(headerNotifyType))
	dl.Header.Set(headerHost, x.Host)
	dl.Header.Set(headerAttempts, strconv.Itoa(attempt))
	pctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	if _, err := d.js.PublishMsg(pctx, dl, jetstream.WithExpectStream("DLQ")); err != nil {
		d.log.Error("notification dead letter not stored; trying again", append(fields, zap.NamedError("dlq_error", err))...)
		_ = m.NakWithDelay(d.cfg.RetryMin)
		return
	}
	_ = m.Ack()
	d.outcomes.WithLabelValues(x.Label, outcomeDead).Inc()
	d.log.Error("notification undelivered after NOTIFY_MAX_AGE; dead letter on "+SubjectDeadLetter, fields...)
}
