package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/jsstream"
	"github.com/ctmpipe/ctmpipe/internal/outbound"
)

// Publisher stores notifications in stream NOTIFY. A nil *Publisher
// (notifications off) drops them: callers need not check. It is safe for
// concurrent use.
type Publisher struct {
	js    jetstream.JetStream
	cfg   Config
	dests []outbound.Destination
	lock  chan struct{}
	ready atomic.Bool // NOTIFY and every destination's consumer exist
	// Now defaults to time.Now; tests may set it.
	Now func() time.Time
}

// NewPublisher returns a Publisher over js for cfg, nil when cfg has no
// destination. It does no I/O: the first Notify creates the stream.
func NewPublisher(js jetstream.JetStream, cfg Config) (*Publisher, error) {
	if !cfg.Enabled() {
		return nil, cfg.Validate()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	ds, err := outbound.ParseDestinations("NOTIFY_URLS", cfg.URLs)
	if err != nil {
		return nil, err
	}
	if js == nil {
		return nil, errors.New("notify: NOTIFY_URLS needs NATS (NATS_URL)")
	}
	return &Publisher{js: js, cfg: cfg, dests: ds, lock: make(chan struct{}, 1), Now: time.Now}, nil
}

// DeadLetterRule is the rule of dead_letters.rising: threshold dead
// letters within window. A nil Publisher has none (threshold 0).
func (p *Publisher) DeadLetterRule() (threshold int, window time.Duration) {
	if p == nil {
		return 0, 0
	}
	return p.cfg.DeadLetterThreshold, p.cfg.DeadLetterWindow
}

// Notify stores n (its Time set to now when zero) and returns once
// JetStream has it. n.ID must be set: it deduplicates.
func (p *Publisher) Notify(ctx context.Context, n Notification) error {
	if p == nil {
		return nil
	}
	if n.ID == "" || n.Type == "" {
		return errors.New("notify: a notification needs an id and a type")
	}
	if n.Time.IsZero() {
		n.Time = p.Now().UTC()
	}
	body, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if err := p.setup(ctx); err != nil {
		return err
	}
	m := nats.NewMsg(SubjectAll)
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, n.ID)
	m.Header.Set(headerNotifyType, n.Type)
	if _, err := p.js.PublishMsg(ctx, m, jetstream.WithExpectStream(StreamNotify)); err != nil {
		return fmt.Errorf("notify: publish %s: %w", n.Type, err)
	}
	return nil
}

// setup creates NOTIFY and the destinations' consumers once: with interest
// retention, a notification stored before its consumer exists is dropped.
func (p *Publisher) setup(ctx context.Context) error {
	if p.ready.Load() {
		return nil
	}
	select {
	case p.lock <- struct{}{}:
		defer func() { <-p.lock }()
	case <-ctx.Done():
		return ctx.Err()
	}
	if p.ready.Load() {
		return nil
	}
	if _, err := jsstream.Ensure(ctx, p.js, notifyStream(p.cfg.MaxAge, p.cfg.Replicas), nil); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	for _, d := range p.dests {
		if _, err := ensureConsumer(ctx, p.js, d, p.cfg.Timeout); err != nil {
			return err
		}
	}
	p.ready.Store(true)
	return nil
}
