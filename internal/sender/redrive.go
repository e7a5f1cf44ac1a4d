package sender

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNeedForce is returned when in_doubt dead letters are selected without
// -force.
var ErrNeedForce = errors.New("redrive: in_doubt needs -force: those events may already be at Meta, " +
	"which does not deduplicate them; check Events Manager first")

// Reasons lists the dead-letter reasons.
var Reasons = []string{ReasonInvalid, ReasonExpired, ReasonUnattributed, ReasonRejected, ReasonInDoubt}

// RedriveOptions selects dead letters to publish back to CONVERSIONS.
type RedriveOptions struct {
	Reasons []string  // required: dlq.<reason> subjects to read
	From    time.Time // dead-lettered at or after (zero: from the start)
	Until   time.Time // dead-lettered at or before (zero: up to now)
	Limit   int       // at most this many (0: all)
	DryRun  bool      // count only
	Force   bool      // allow in_doubt: the sender then takes over their claims
}

// RedriveResult says what a redrive did.
type RedriveResult struct {
	Matched     int            // dead letters selected
	Republished int            // published back and acknowledged by JetStream
	Deleted     int            // removed from DLQ after their republish
	Skipped     int            // without an original subject: left in DLQ
	ByReason    map[string]int // selected per reason
}

// Redrive publishes the selected dead letters back to their original
// subject with their original data, then deletes each from DLQ once
// JetStream acknowledged the publish. The republished message's
// Nats-Msg-Id is the original's with "-redrive-<dlq seq>", so running the
// same redrive again after a crash between publish and delete is dropped by
// the CONVERSIONS duplicate window (and past it, the sender's ledger still
// never sends an event twice). Forced in_doubt letters carry HeaderForce.
func Redrive(ctx context.Context, js jetstream.JetStream, opts RedriveOptions) (RedriveResult, error) {
	res := RedriveResult{ByReason: map[string]int{}}
	if len(opts.Reasons) == 0 {
		return res, errors.New("redrive: at least one -reason is required")
	}
	subjects := make([]string, 0, len(opts.Reasons))
	for _, r := range opts.Reasons {
		if !slices.Contains(Reasons, r) {
			return res, fmt.Errorf("redrive: unknown reason %q (known: %s)", r, strings.Join(Reasons, ", "))
		}
		if r == ReasonInDoubt && !opts.Force {
			return res, ErrNeedForce
		}
		subjects = append(subjects, "dlq."+r)
	}
	stream, err := js.Stream(ctx, StreamDLQ)
	if err != nil {
		return res, fmt.Errorf("redrive: stream %s: %w", StreamDLQ, err)
	}
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverAllPolicy}
	if !opts.From.IsZero() {
		occ.DeliverPolicy, occ.OptStartTime = jetstream.DeliverByStartTimePolicy, &opts.From
	}
	cons, err := stream.OrderedConsumer(ctx, occ)
	if err != nil {
		return res, fmt.Errorf("redrive: read %s: %w", StreamDLQ, err)
	}
	// Read what was there when the redrive began; letters added meanwhile
	// wait for the next run.
	err = readPending(ctx, cons, 0, func(m jetstream.Msg, md *jetstream.MsgMetadata) (bool, error) {
		if !opts.Until.IsZero() && md.Timestamp.After(opts.Until) {
			return true, nil // later letters are newer still
		}
		if opts.Limit > 0 && res.Matched >= opts.Limit {
			return true, nil
		}
		res.Matched++
		res.ByReason[m.Headers().Get(HeaderReason)]++
		if opts.DryRun {
			return false, nil
		}
		return false, redriveOne(ctx, js, stream, m, md.Sequence.Stream, &res)
	})
	if err != nil {
		return res, fmt.Errorf("redrive: read %s: %w", StreamDLQ, err)
	}
	return res, nil
}

func redriveOne(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, m jetstream.Msg, seq uint64, res *RedriveResult) error {
	h := m.Headers()
	if !strings.HasPrefix(h.Get(HeaderSubject), "conversions.") {
		res.Skipped++
		return nil
	}
	if err := republish(ctx, js, stream, m, seq, "redrive", h.Get(HeaderReason) == ReasonInDoubt); err != nil {
		return fmt.Errorf("redrive: %w", err)
	}
	res.Republished++
	res.Deleted++
	return nil
}

// Print writes the summary of a redrive.
func (r RedriveResult) Print(w io.Writer, dryRun bool) {
	verb := "redriven"
	if dryRun {
		verb = "would redrive (dry run)"
	}
	fmt.Fprintf(w, "%s: %d dead letters", verb, r.Matched)
	for _, reason := range Reasons {
		if n := r.ByReason[reason]; n > 0 {
			fmt.Fprintf(w, ", %s %d", reason, n)
		}
	}
	fmt.Fprintln(w)
	if !dryRun {
		fmt.Fprintf(w, "republished %d, deleted from DLQ %d, skipped (no original subject) %d\n", r.Republished, r.Deleted, r.Skipped)
	}
}
