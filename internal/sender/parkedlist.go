package sender

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Parked is one conversion waiting in stream PARKED for its business: its
// event id and when it was first published and parked; never its data.
type Parked struct {
	Seq         uint64    `json:"seq"`
	EventID     string    `json:"event_id"`
	PublishedAt time.Time `json:"published_at"`
	ParkedAt    time.Time `json:"parked_at"`
}

// ListParked returns how many conversions business has parked and the
// first limit of them, oldest first, read with an ephemeral ordered
// consumer (nothing is acked or moved).
func ListParked(ctx context.Context, js jetstream.JetStream, business string, limit int) (int, []Parked, error) {
	stream, err := js.Stream(ctx, StreamParked)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("sender: parked: %w", err)
	}
	subj := parkSubject(business)
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return 0, nil, fmt.Errorf("sender: parked: %w", err)
	}
	total := int(info.State.Subjects[subj])
	if total == 0 || limit <= 0 {
		return total, nil, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return total, nil, fmt.Errorf("sender: parked: %w", err)
	}
	batch, err := cons.FetchNoWait(min(limit, total))
	if err != nil {
		return total, nil, fmt.Errorf("sender: parked: %w", err)
	}
	var out []Parked
	for m := range batch.Messages() {
		p := Parked{EventID: m.Headers().Get(HeaderEventID)}
		if md, err := m.Metadata(); err == nil {
			p.Seq, p.ParkedAt = md.Sequence.Stream, md.Timestamp.UTC()
		}
		p.PublishedAt, _ = time.Parse(time.RFC3339Nano, m.Headers().Get(HeaderPublished))
		out = append(out, p)
	}
	return total, out, batch.Error()
}
