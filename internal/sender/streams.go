package sender

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/jsstream"
)

// The JetStream names of the contract.
const (
	StreamConversions  = "CONVERSIONS"
	SubjectConversions = "conversions.>"
	StreamDLQ          = "DLQ"
	SubjectDLQ         = "dlq.>"
	ConsumerName       = "sender"
)

const (
	// streamMaxAge keeps messages twice Meta's 7-day window: by then every
	// message has been sent, dead-lettered (at the latest as expired) or is a
	// duplicate, and nothing personal is kept for long.
	streamMaxAge = 14 * 24 * time.Hour
	// conversionsDupWindow is the Nats-Msg-Id deduplication window of
	// CONVERSIONS: publishers' retries within it are dropped by JetStream.
	conversionsDupWindow = 5 * time.Minute
	// dlqDupWindow outlasts any redelivery of a message whose dead letter
	// was stored but whose ack was lost, so the letter is stored once.
	dlqDupWindow = time.Hour
)

// ensureStreams creates CONVERSIONS, DLQ, PARKED (with STREAM_REPLICAS
// replicas) and the durable consumer when they are absent. Existing ones are
// used as they are: an operator may have changed limits; another replica
// count is logged (jsstream.Check).
func ensureStreams(ctx context.Context, js jetstream.JetStream, log *zap.Logger, replicas, maxAckPending int, ackWait time.Duration) (jetstream.Consumer, error) {
	for _, cfg := range []jetstream.StreamConfig{
		fileStream(StreamConversions, SubjectConversions, conversionsDupWindow, replicas),
		fileStream(StreamDLQ, SubjectDLQ, dlqDupWindow, replicas),
		fileStream(StreamParked, SubjectParked, dlqDupWindow, replicas),
	} {
		if _, err := jsstream.Ensure(ctx, js, cfg, log); err != nil {
			return nil, err
		}
	}
	cons, err := js.Consumer(ctx, StreamConversions, ConsumerName)
	if err == nil {
		return cons, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("consumer %s: %w", ConsumerName, err)
	}
	cons, err = js.CreateConsumer(ctx, StreamConversions, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "ctmpipe sender: conversions to the Conversions API",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1, // NakWithDelay counts as a delivery; waiting must not end in a drop
		MaxAckPending: maxAckPending,
		FilterSubject: SubjectConversions,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if errors.Is(err, jetstream.ErrConsumerExists) {
		cons, err = js.Consumer(ctx, StreamConversions, ConsumerName)
	}
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", ConsumerName, err)
	}
	return cons, nil
}

// fileStream is the configuration of the sender's streams: on disk, kept
// streamMaxAge, deduplicating Nats-Msg-Id over dup, on replicas servers.
func fileStream(name, subject string, dup time.Duration, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{subject},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     streamMaxAge,
		Duplicates: dup,
		Replicas:   max(replicas, 1),
	}
}
