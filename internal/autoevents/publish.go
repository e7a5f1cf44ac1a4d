package autoevents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctmpipe/ctmpipe/internal/tracing"
	"github.com/ctmpipe/ctmpipe/pkg/conversion"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// The JetStream names of the contract (docs/contract.md); they equal
// internal/sender's StreamConversions and the whatsapp subject, which this
// package must not import.
const (
	streamConversions = "CONVERSIONS"
	subjectWhatsApp   = "conversions." + conversion.WhatsApp
)

// ErrUnavailable wraps every failure to store the events in JetStream
// (NATS away, no CONVERSIONS stream yet, no ack in time): ingest answers
// Meta 503, and Meta's redelivery publishes them again, as duplicates of
// whatever was stored.
var ErrUnavailable = errors.New("autoevents: conversions not stored")

// publisher is the part of jetstream.JetStream Publish uses.
type publisher interface {
	Conn() *nats.Conn
	PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Publisher publishes automatic events as conversions.
type Publisher struct {
	js publisher
	sw Switch
	m  *metrics
}

// NewPublisher returns a Publisher that publishes to js the events of the
// businesses sw enables, counting them in reg.
func NewPublisher(js jetstream.JetStream, sw Switch, reg prometheus.Registerer) (*Publisher, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("autoevents: metrics: %w", err)
	}
	return &Publisher{js: js, sw: sw, m: m}, nil
}

// Result is what Publish did with one delivery's events.
type Result struct {
	// Published and Duplicates are the events JetStream stored now and
	// those it had stored before (the same event_id within its window).
	Published, Duplicates int
	// Disabled counts events of businesses the Switch does not enable.
	Disabled int
	// NoClick counts events without ctwa_clid, which cannot be reported.
	NoClick int
	// Invalid are the events that break the conversion contract.
	Invalid []Rejected
}

// Rejected names an invalid event by its event_id (a hash, safe to log) and
// the rule it breaks.
type Rejected struct {
	EventID string
	Reason  string
}

// Publish converts each event of an enabled business (Convert) and
// publishes the valid ones to conversions.whatsapp with Nats-Msg-Id =
// event_id, waiting for JetStream's ack of each. It returns an error
// wrapping ErrUnavailable unless every one was stored: the caller must then
// not answer 200. Invalid, click-less and disabled events are no error
// (Meta's retry would not change them); Result counts them. ctx bounds the
// wait: give it a deadline below the answer's. With NATS disconnected it
// fails at once rather than wait in the client's reconnect buffer.
func (p *Publisher) Publish(ctx context.Context, events []webhook.AutomaticEvent) (Result, error) {
	var res Result
	var valid []conversion.Conversion
	for _, ev := range events {
		on, err := p.sw.Enabled(ctx, ev.BusinessID)
		if err != nil {
			return Result{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if !on {
			res.Disabled++
			continue
		}
		c, err := Convert(ev)
		switch {
		case errors.Is(err, ErrNoClick):
			res.NoClick++
		case err != nil:
			res.Invalid = append(res.Invalid, Rejected{EventID: c.EventID, Reason: err.Error()})
		default:
			valid = append(valid, c)
		}
	}
	for i := range valid {
		dup, err := p.publish(ctx, &valid[i])
		if err != nil {
			return Result{}, err
		}
		if dup {
			res.Duplicates++
		} else {
			res.Published++
		}
	}
	p.m.add(res)
	return res, nil
}

// publish stores one conversion and reports whether JetStream had it
// already.
func (p *Publisher) publish(ctx context.Context, c *conversion.Conversion) (bool, error) {
	if st := p.js.Conn().Status(); st != nats.CONNECTED {
		return false, fmt.Errorf("%w: nats %s", ErrUnavailable, st)
	}
	data, err := json.Marshal(c)
	if err != nil { // cannot happen: Validate checked custom_data is JSON
		return false, fmt.Errorf("%w: encode: %v", ErrUnavailable, err)
	}
	m := &nats.Msg{Subject: subjectWhatsApp, Data: data}
	tracing.Inject(ctx, m) // the webhook's span, when tracing is on
	ack, err := p.js.PublishMsg(ctx, m, jetstream.WithMsgID(c.EventID), jetstream.WithExpectStream(streamConversions))
	if err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			return false, fmt.Errorf("%w: no stream takes %s (the sender creates %s when it starts)", ErrUnavailable, subjectWhatsApp, streamConversions)
		}
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return ack.Duplicate, nil
}
