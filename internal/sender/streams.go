package sender

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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

// ensureStreams creates CONVERSIONS, DLQ, PARKED and the durable consumer when they
// are absent. Existing ones are used as they are: an operator may have made
// them replicated (R3) or changed limits.
func ensureStreams(ctx context.Context, js jetstream.JetStream, maxAckPending int, ackWait time.Duration) (jetstream.Consumer, error) {
	for _, cfg := range []jetstream.StreamConfig{
		fileStream(StreamConversions, SubjectConversions, conversionsDupWindow),
		fileStream(StreamDLQ, SubjectDLQ, dlqDupWindow),
		fileStream(StreamParked, SubjectParked, dlqDupWindow),
	} {
		if err := ensureStream(ctx, js, cfg); err != nil {
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
// streamMaxAge, deduplicating Nats-Msg-Id over dup.
func fileStream(name, subject string, dup time.Duration) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{subject},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     streamMaxAge,
		Duplicates: dup,
	}
}

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	_, err := js.Stream(ctx, cfg.Name)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	if _, err := js.CreateStream(ctx, cfg); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("create stream %s: %w", cfg.Name, err)
	}
	return nil
}
