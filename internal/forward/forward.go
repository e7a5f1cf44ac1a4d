// Package forward hands every verified webhook on to the systems that Meta's
// one callback URL used to reach (an inbox, a bot, a helpdesk), byte for
// byte and signed as Meta signed it, so that putting ingest in front of them
// displaces nothing.
//
// Ingest calls Enqueuer.Enqueue before it answers Meta: the body is then in
// JetStream stream FORWARD, and only then does Meta get its 200. A Forwarder
// delivers each body to each destination on a durable consumer of its own,
// retrying with backoff for up to FORWARD_MAX_AGE; what is still undelivered
// then becomes a dead letter on dlq.forward, which Redrive sends again.
// Delivery is at least once: a destination may see a body twice (after a
// crash between its 2xx and our ack), and X-Ctm-Delivery-Id lets it tell.
package forward

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/jsstream"
	"github.com/ctmpipe/ctmpipe/internal/outbound"
)

// The JetStream names of forwarding.
const (
	// StreamForward holds bodies until every destination has them.
	StreamForward = "FORWARD"
	// SubjectAll carries each enqueued body, for every destination.
	SubjectAll = "forward.all"
	// subjectTo plus a destination id carries a redriven body for that
	// destination only.
	subjectTo = "forward.to."
	// SubjectDeadLetter is where undeliverable bodies end, in stream DLQ.
	SubjectDeadLetter = "dlq.forward"
	// ReasonForward is the Ctm-Dlq-Reason of those dead letters.
	ReasonForward = "forward"

	streamDLQ  = "DLQ"
	subjectDLQ = "dlq.>"
)

// HTTP headers kept from Meta's request and sent to each destination.
const (
	HeaderSignature = "X-Hub-Signature-256"
	// headerSignatureSHA1 is the older SHA-1 signature Meta still sends
	// beside the SHA-256 one; some inboxes verify only that.
	headerSignatureSHA1 = "X-Hub-Signature"
	headerContentType   = "Content-Type"
	// HeaderDeliveryID is sent to destinations: the same value on every
	// attempt (and after a redrive) of one body, for their deduplication.
	HeaderDeliveryID = "X-Ctm-Delivery-Id"
)

// Dead-letter headers: the names internal/sender uses on stream DLQ
// (dlq.go there), so that one set of tools reads both.
const (
	headerReason    = "Ctm-Dlq-Reason"
	headerError     = "Ctm-Dlq-Error"
	headerSubject   = "Ctm-Dlq-Subject"
	headerTime      = "Ctm-Dlq-Time"
	headerMsgID     = "Ctm-Dlq-Msg-Id"
	headerPublished = "Ctm-Published"
	// Forwarding's own: the destination's host (never its path, userinfo
	// or query, which may hold a token), its id (the consumer's suffix,
	// which Redrive publishes back to) and the attempts made.
	HeaderHost        = "Ctm-Fwd-Host"
	HeaderDestination = "Ctm-Fwd-Destination"
	HeaderAttempts    = "Ctm-Fwd-Attempts"
)

const (
	// DupWindow is FORWARD's Nats-Msg-Id window. The id is a hash of the
	// signature and the body, so Meta redelivering the same bytes within it
	// (our 200 was lost on the way) is stored once. Past it, a redelivery is
	// forwarded again, with its own X-Ctm-Delivery-Id. Ten minutes bounds the
	// server's memory for ids (one entry per body in the window).
	DupWindow = 10 * time.Minute
	// streamMargin keeps bodies in FORWARD a day past FORWARD_MAX_AGE, so a
	// forwarder that was down for up to a day still attempts and
	// dead-letters them rather than finding them gone.
	streamMargin = 24 * time.Hour
	// maxAckPending lets many bodies wait in backoff without stopping new
	// ones; how many are posted at once is FORWARD_CONCURRENCY.
	maxAckPending = 10000
	// ackMargin is added to twice FORWARD_TIMEOUT for the consumer's
	// AckWait: a body may wait one post in the client's buffer for a free
	// worker, then takes at most one post itself.
	ackMargin = 5 * time.Second
)

// destination is one FORWARD_URLS entry.
type destination struct {
	url   string // as configured: may hold credentials, never logged
	host  string // host[:port]: logs, the metrics label, dead-letter headers
	label string // host, made unique when two URLs share one
	id    string // stable hash of url: consumer name and redrive subject
}

func (d destination) consumer() string { return "fwd-" + d.id }
func (d destination) subject() string  { return subjectTo + d.id }

// destinationID is outbound.DestinationID: consumer names stay as they were.
func destinationID(raw string) string { return outbound.DestinationID(raw) }

// parseDestinations checks FORWARD_URLS (outbound.ParseDestinations).
func parseDestinations(urls []string) ([]destination, error) {
	ds, err := outbound.ParseDestinations("FORWARD_URLS", urls)
	if err != nil {
		return nil, err
	}
	out := make([]destination, len(ds))
	for i, d := range ds {
		out[i] = destination{url: d.URL, host: d.Host, label: d.Label, id: d.ID}
	}
	return out, nil
}

// forwardStream is FORWARD's configuration. Interest retention drops a body
// once every destination's consumer has acked it; MaxAge is the backstop
// (for consumers of destinations no longer configured).
func forwardStream(maxAge time.Duration, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamForward,
		Description: "ctmpipe: verified webhooks waiting to be forwarded",
		Subjects:    []string{"forward.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.InterestPolicy,
		MaxAge:      maxAge + streamMargin,
		Duplicates:  DupWindow,
		Replicas:    max(replicas, 1),
	}
}

// consumerConfig is a destination's durable consumer. It starts with the
// bodies enqueued after it was created (DeliverNew): a destination added
// later does not receive the past. Ingest creates the consumers before its
// first Enqueue, so nothing enqueued for a configured destination precedes
// its consumer.
func consumerConfig(d destination, timeout time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        d.consumer(),
		Description:    "ctmpipe forward to " + d.host,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        2*timeout + ackMargin,
		MaxDeliver:     -1, // FORWARD_MAX_AGE ends the retries, not a count
		MaxAckPending:  maxAckPending,
		FilterSubjects: []string{SubjectAll, d.subject()},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	}
}

// ensureStream creates cfg's stream when absent; an existing one is used as
// it is (the sender owns DLQ's limits; another replica count is logged on
// log, nil: not), except that with raise a MaxAge shorter than cfg's is
// raised, so that a longer FORWARD_MAX_AGE is honoured by FORWARD.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, raise bool, log *zap.Logger) error {
	s, err := jsstream.Ensure(ctx, js, cfg, log)
	if err != nil {
		return err
	}
	have := s.CachedInfo().Config
	if raise && have.MaxAge != 0 && have.MaxAge < cfg.MaxAge {
		have.MaxAge = cfg.MaxAge
		if _, err := js.UpdateStream(ctx, have); err != nil {
			return fmt.Errorf("update stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// ensureConsumer creates d's consumer when absent, leaving an existing one
// as it is.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, d destination, timeout time.Duration) (jetstream.Consumer, error) {
	c, err := js.Consumer(ctx, StreamForward, d.consumer())
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("consumer %s: %w", d.consumer(), err)
	}
	c, err = js.CreateConsumer(ctx, StreamForward, consumerConfig(d, timeout))
	if errors.Is(err, jetstream.ErrConsumerExists) {
		c, err = js.Consumer(ctx, StreamForward, d.consumer())
	}
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", d.consumer(), err)
	}
	return c, nil
}
