package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/outbound"
)

// The JetStream names of the notifications.
const (
	// StreamNotify holds notifications until every destination has them.
	StreamNotify = "NOTIFY"
	// SubjectAll carries each notification, for every destination.
	SubjectAll = "notify.all"
	// SubjectDeadLetter is where undeliverable notifications end, in DLQ.
	SubjectDeadLetter = "dlq.notify"
	// ReasonNotify is the Ctm-Dlq-Reason of those dead letters.
	ReasonNotify = "notify"

	// DupWindow is NOTIFY's Nats-Msg-Id window: the same occurrence told by
	// several senders within an hour is stored once.
	DupWindow = time.Hour
	// streamMargin keeps notifications a day past NOTIFY_MAX_AGE, so that a
	// deliverer down for up to a day still dead-letters them.
	streamMargin = 24 * time.Hour
	ackMargin    = 5 * time.Second
)

// Dead-letter headers: the sender's names on stream DLQ.
const (
	headerReason      = "Ctm-Dlq-Reason"
	headerError       = "Ctm-Dlq-Error"
	headerTime        = "Ctm-Dlq-Time"
	headerPublished   = "Ctm-Published"
	headerMsgID       = "Ctm-Dlq-Msg-Id"
	headerHost        = "Ctm-Notify-Host"
	headerAttempts    = "Ctm-Notify-Attempts"
	headerNotifyType  = "Ctm-Notify-Type"
	consumerPrefix    = "notify-"
	headerContentType = "Content-Type"
)

func consumerName(d outbound.Destination) string { return consumerPrefix + d.ID }

// notifyStream is NOTIFY's configuration: interest retention drops a
// notification once every destination's consumer has acked it.
func notifyStream(maxAge time.Duration, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamNotify,
		Description: "ctmpipe: notifications waiting for the partner's receivers",
		Subjects:    []string{"notify.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.InterestPolicy,
		MaxAge:      maxAge + streamMargin,
		Duplicates:  DupWindow,
		Replicas:    max(replicas, 1),
	}
}

// consumerConfig is d's durable consumer: one notification at a time, in
// order, so that paused then resumed arrive in that order.
func consumerConfig(d outbound.Destination, timeout time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        consumerName(d),
		Description:    "ctmpipe notify " + d.Host,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        2*timeout + ackMargin,
		MaxDeliver:     -1, // NOTIFY_MAX_AGE ends the retries
		MaxAckPending:  1000,
		FilterSubjects: []string{SubjectAll},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	}
}

// ensureConsumer creates d's consumer when absent.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, d outbound.Destination, timeout time.Duration) (jetstream.Consumer, error) {
	c, err := js.Consumer(ctx, StreamNotify, consumerName(d))
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("notify: consumer %s: %w", consumerName(d), err)
	}
	c, err = js.CreateConsumer(ctx, StreamNotify, consumerConfig(d, timeout))
	if errors.Is(err, jetstream.ErrConsumerExists) {
		c, err = js.Consumer(ctx, StreamNotify, consumerName(d))
	}
	if err != nil {
		return nil, fmt.Errorf("notify: create consumer %s: %w", consumerName(d), err)
	}
	return c, nil
}
