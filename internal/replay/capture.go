package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The capture ingest writes (internal/ingest/capture.go): stream WEBHOOKS,
// subjects webhooks.>, the raw body as data and these headers.
const (
	CaptureStream     = "WEBHOOKS"
	CaptureSubjects   = "webhooks.>"
	HeaderReceivedAt  = "Ctm-Received-At" // RFC 3339 with nanoseconds
	HeaderChannel     = "Ctm-Channel"
	HeaderPath        = "Ctm-Path" // PathCloud or PathOnPrem
	captureFetchBatch = 256
)

// ClockSkew is how far ingest's clock (Ctm-Received-At) and the NATS
// server's clock (the stored time the consumer starts from) may disagree.
// The consumer starts this much before From so no body is missed, and the
// read stops only at a body received this much after Until.
const ClockSkew = time.Minute

// Capture is the Source of the JetStream capture: the bodies ingest
// received in [From, Until), by their Ctm-Received-At header (the stored
// time when a message has none). A zero Until reads to the end of the stream.
type Capture struct {
	JS    jetstream.JetStream
	From  time.Time
	Until time.Time
	// Stream defaults to CaptureStream.
	Stream string
}

// Read implements Source with an ordered consumer that starts by time: no
// durable state is left behind on the server.
func (c *Capture) Read(ctx context.Context, emit func(Item) error) error {
	name := c.stream()
	st, err := c.JS.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("capture: stream %s: %w", name, err)
	}
	// The end is fixed now: when ingest captures the bodies this replay
	// sends, reading to a moving end would never finish.
	last := st.CachedInfo().State.LastSeq
	if st.CachedInfo().State.Msgs == 0 {
		return nil
	}
	start := c.From.Add(-ClockSkew)
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{CaptureSubjects},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return fmt.Errorf("capture: consumer: %w", err)
	}
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		return nil
	}
	for {
		batch, err := cons.Fetch(captureFetchBatch, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("capture: fetch: %w", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			meta, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("capture: metadata: %w", err)
			}
			done, err := c.handle(msg, meta, last, emit)
			if err != nil || done {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("capture: fetch: %w", err)
		}
		if got == 0 {
			// Nothing within the wait: the messages up to last are gone
			// (limits, purge) or the stream moved on. Either way, done.
			return ctx.Err()
		}
	}
}

// handle emits one captured message if it is in range and reports whether
// the read is over.
func (c *Capture) handle(msg jetstream.Msg, meta *jetstream.MsgMetadata, last uint64, emit func(Item) error) (bool, error) {
	seq := meta.Sequence.Stream
	if seq > last {
		return true, nil
	}
	end := seq == last || meta.NumPending == 0
	at := meta.Timestamp
	src := fmt.Sprintf("%s:%d", c.stream(), seq)
	if h := msg.Headers().Get(HeaderReceivedAt); h != "" {
		t, err := time.Parse(time.RFC3339Nano, h)
		if err != nil {
			return end, emit(Item{Source: src, Err: errors.New("capture header " + HeaderReceivedAt + " is not RFC 3339")})
		}
		at = t
	}
	if !c.Until.IsZero() && !at.Before(c.Until.Add(ClockSkew)) {
		return true, nil
	}
	if at.Before(c.From) || (!c.Until.IsZero() && !at.Before(c.Until)) {
		return end, nil
	}
	return end, emit(Item{Source: src, Body: msg.Data(), Path: msg.Headers().Get(HeaderPath)})
}

func (c *Capture) stream() string {
	if c.Stream == "" {
		return CaptureStream
	}
	return c.Stream
}
