package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/jsfetch"
)

// RedriveOptions selects dlq.forward dead letters to send again.
type RedriveOptions struct {
	Hosts  []string  // only those for these destination hosts (Ctm-Fwd-Host); empty: all
	Seqs   []uint64  // only these DLQ sequences (empty: all)
	From   time.Time // dead-lettered at or after (zero: from the start)
	Until  time.Time // dead-lettered at or before (zero: up to now)
	Limit  int       // at most this many (0: all)
	DryRun bool      // count only
}

// RedriveResult says what a redrive did.
type RedriveResult struct {
	Matched     int // dead letters selected
	Republished int // published back to FORWARD, acknowledged, and deleted from DLQ
	Skipped     int // their destination is no longer configured: left in DLQ
}

// Redrive publishes the selected dlq.forward dead letters back into stream
// FORWARD for their own destination only (subject forward.to.<id>, which
// only that destination's consumer reads), then deletes each from DLQ once
// JetStream acknowledged the publish. The destination gets the body as
// first sent, with the same X-Ctm-Delivery-Id, and a fresh FORWARD_MAX_AGE.
// A letter whose destination has no consumer (its URL was removed from
// FORWARD_URLS) is left in DLQ and counted as skipped: FORWARD would keep
// it for nobody. The republished Nats-Msg-Id carries the DLQ sequence, so a
// redrive run again after a crash between publish and delete is dropped by
// FORWARD's duplicate window.
func Redrive(ctx context.Context, js jetstream.JetStream, opts RedriveOptions) (RedriveResult, error) {
	var res RedriveResult
	dlq, err := js.Stream(ctx, streamDLQ)
	if err != nil {
		return res, fmt.Errorf("forward redrive: stream %s: %w", streamDLQ, err)
	}
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: []string{SubjectDeadLetter}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if !opts.From.IsZero() {
		occ.DeliverPolicy, occ.OptStartTime = jetstream.DeliverByStartTimePolicy, &opts.From
	}
	cons, err := dlq.OrderedConsumer(ctx, occ)
	if err != nil {
		return res, fmt.Errorf("forward redrive: read %s: %w", streamDLQ, err)
	}
	known := map[string]bool{} // destination id → has a consumer
	err = jsfetch.Pending(ctx, cons, 0, func(m jetstream.Msg, md *jetstream.MsgMetadata) (bool, error) {
		if !opts.Until.IsZero() && md.Timestamp.After(opts.Until) {
			return true, nil // later letters are newer still
		}
		if opts.Limit > 0 && res.Matched >= opts.Limit {
			return true, nil
		}
		h := m.Headers()
		if len(opts.Hosts) > 0 && !slices.Contains(opts.Hosts, h.Get(HeaderHost)) {
			return false, nil
		}
		if len(opts.Seqs) > 0 && !slices.Contains(opts.Seqs, md.Sequence.Stream) {
			return false, nil
		}
		res.Matched++
		if opts.DryRun {
			return false, nil
		}
		id := h.Get(HeaderDestination)
		ok, seen := known[id]
		if !seen {
			ok, err = hasConsumer(ctx, js, id)
			if err != nil {
				return false, err
			}
			known[id] = ok
		}
		if !ok {
			res.Skipped++
			return false, nil
		}
		if err := redriveOne(ctx, js, dlq, m, md.Sequence.Stream); err != nil {
			return false, err
		}
		res.Republished++
		return false, nil
	})
	if err != nil {
		return res, fmt.Errorf("forward redrive: %w", err)
	}
	return res, nil
}

// Print writes the summary of a redrive.
func (r RedriveResult) Print(w io.Writer, dryRun bool) {
	if dryRun {
		fmt.Fprintf(w, "would redrive (dry run): %d forward dead letters\n", r.Matched)
		return
	}
	fmt.Fprintf(w, "redriven: %d forward dead letters; republished and deleted from DLQ %d, skipped (destination no longer configured) %d\n",
		r.Matched, r.Republished, r.Skipped)
}

func hasConsumer(ctx context.Context, js jetstream.JetStream, id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	_, err := js.Consumer(ctx, StreamForward, destination{id: id}.consumer())
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return false, nil
	}
	return false, fmt.Errorf("consumer of %s: %w", id, err)
}

func redriveOne(ctx context.Context, js jetstream.JetStream, dlq jetstream.Stream, m jetstream.Msg, seq uint64) error {
	h := m.Headers()
	out := nats.NewMsg(destination{id: h.Get(HeaderDestination)}.subject())
	out.Data = m.Data()
	for _, k := range []string{headerContentType, HeaderSignature, headerSignatureSHA1} {
		if v := h.Get(k); v != "" {
			out.Header.Set(k, v)
		}
	}
	first := h.Get(headerMsgID)
	out.Header.Set(headerDeliveryID, first)
	out.Header.Set(jetstream.MsgIDHeader, first+"-redrive-"+strconv.FormatUint(seq, 10))
	if _, err := js.PublishMsg(ctx, out, jetstream.WithExpectStream(StreamForward)); err != nil {
		return fmt.Errorf("publish dead letter %d back: %w", seq, err)
	}
	if err := dlq.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("delete dead letter %d: %w", seq, err)
	}
	return nil
}
