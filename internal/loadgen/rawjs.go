package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The raw baseline's own stream, configured like CONVERSIONS (file storage,
// limits retention, a dedup window) so the two differ only in what consumes
// them.
const (
	RawStream   = "LOADGEN_RAW"
	RawSubject  = "loadgen-raw"
	rawConsumer = "raw"
)

// RawFetchAck is the sender's baseline: the same messages, published the
// same way to a stream configured the same way, consumed by the smallest
// loop that does what the sender must do at the least (Fetch a batch, Ack
// each message) and nothing else. It returns how long consuming took, from
// the first Fetch until the server held every ack.
// started, when not nil, is called once the messages are published, right
// before consuming starts.
func RawFetchAck(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg, batch int, started func()) (time.Duration, error) {
	if err := js.DeleteStream(ctx, RawStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, fmt.Errorf("raw: delete stream: %w", err)
	}
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: RawStream, Subjects: []string{RawSubject + ".>"}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, Duplicates: 5 * time.Minute,
	})
	if err != nil {
		return 0, fmt.Errorf("raw: create stream: %w", err)
	}
	defer js.DeleteStream(context.WithoutCancel(ctx), RawStream) //nolint:errcheck // best effort: free the disk
	cons, err := js.CreateConsumer(ctx, RawStream, jetstream.ConsumerConfig{
		Durable: rawConsumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
		MaxDeliver: -1, MaxAckPending: 50000, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return 0, fmt.Errorf("raw: create consumer: %w", err)
	}
	if err := PublishAll(ctx, js, msgs); err != nil {
		return 0, fmt.Errorf("raw: %w", err)
	}
	if started != nil {
		started()
	}
	start := time.Now()
	acked := 0
	for acked < len(msgs) {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		mb, err := cons.Fetch(batch, jetstream.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			return 0, fmt.Errorf("raw: fetch: %w", err)
		}
		for m := range mb.Messages() {
			if err := m.Ack(); err != nil {
				return 0, fmt.Errorf("raw: ack: %w", err)
			}
			acked++
		}
		if err := mb.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return 0, fmt.Errorf("raw: fetch: %w", err)
		}
	}
	if err := WaitDrained(ctx, cons, time.Minute); err != nil {
		return 0, fmt.Errorf("raw: %w", err)
	}
	return time.Since(start), nil
}

// WaitDrained polls cons until it has nothing pending and nothing waiting
// for an ack, or timeout passes.
func WaitDrained(ctx context.Context, cons jetstream.Consumer, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("consumer info: %w", err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consumer %s: %d pending, %d unacked after %s", info.Name, info.NumPending, info.NumAckPending, timeout)
		}
		sleep(ctx, 5*time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// RawMessages rewrites msgs onto the raw baseline's subjects (same bodies
// and headers).
func RawMessages(msgs []*nats.Msg) []*nats.Msg {
	out := make([]*nats.Msg, len(msgs))
	for i, m := range msgs {
		r := nats.NewMsg(RawSubject + m.Subject[len("conversions"):])
		r.Data = m.Data
		r.Header = m.Header
		out[i] = r
	}
	return out
}
