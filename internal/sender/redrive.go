package sender

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/jsfetch"
	"github.com/ctmpipe/ctmpipe/pkg/ledger"
)

// ErrNeedForce is returned when in_doubt dead letters are selected without
// -force.
var ErrNeedForce = errors.New("redrive: in_doubt needs -force: those events may already be at Meta, " +
	"which does not deduplicate them; check Events Manager first")

// Reasons lists the dead-letter reasons of conversions (those Redrive
// publishes back to CONVERSIONS).
var Reasons = []string{ReasonInvalid, ReasonExpired, ReasonUnattributed, ReasonNoClickID, ReasonRejected, ReasonInDoubt}

// ListReasons are the reasons of every dead letter in stream DLQ, which
// ListDeadLetters and ShowDeadLetter read: the conversions' and forward
// (webhook bodies forwarding gave up on; internal/forward redrives them).
var ListReasons = append(slices.Clone(Reasons), ReasonForward)

// RedriveOptions selects dead letters to publish back to CONVERSIONS.
type RedriveOptions struct {
	// Reasons are the dlq.<reason> subjects to read. Empty with Business or
	// Seqs given: every reason but in_doubt (and in_doubt too with Force).
	Reasons  []string
	Business string    // only letters of this business_id (empty: all)
	Seqs     []uint64  // only these DLQ sequences (empty: all)
	From     time.Time // dead-lettered at or after (zero: from the start)
	Until    time.Time // dead-lettered at or before (zero: up to now)
	Limit    int       // at most this many (0: all)
	DryRun   bool      // count only
	Force    bool      // allow in_doubt: the sender then takes over their claims
	// TakeOvers records the operator's request to resend in-doubt events
	// (the sender's ledger); required with Force.
	TakeOvers takeOvers
	ForceTTL  time.Duration // how long such a request waits (0: ledger.DefaultForceTTL)
	// By names who redrives (an audit actor), for the events' history.
	By string
}

// takeOvers records that in-doubt events may be resent (*ledger.Ledger).
type takeOvers interface {
	AllowTakeOver(ctx context.Context, ids []string, ttl time.Duration) error
}

// RedriveResult says what a redrive did.
type RedriveResult struct {
	Matched     int            // dead letters selected
	Republished int            // published back and acknowledged by JetStream
	Deleted     int            // removed from DLQ after their republish
	Skipped     int            // without an original subject: left in DLQ
	ByReason    map[string]int // selected per reason
	// Letters are the selected letters of a dry run (the first
	// maxDryRunList), which Print lists.
	Letters []DeadLetterInfo
}

// maxDryRunList bounds the letters a dry run keeps to list.
const maxDryRunList = 1000

// Redrive publishes the selected dead letters back to their original
// subject with their original data, then deletes each from DLQ once
// JetStream acknowledged the publish. The republished message's
// Nats-Msg-Id is the original's with "-redrive-<dlq seq>", so running the
// same redrive again after a crash between publish and delete is dropped by
// the CONVERSIONS duplicate window (and past it, the sender's ledger still
// never sends an event twice). For a forced in_doubt letter the request to
// resend it is recorded in the ledger first (out of band: the sender trusts
// no header for it).
func Redrive(ctx context.Context, js jetstream.JetStream, opts RedriveOptions) (RedriveResult, error) {
	res := RedriveResult{ByReason: map[string]int{}}
	if len(opts.Reasons) == 0 && opts.Business == "" && len(opts.Seqs) == 0 {
		return res, errors.New("redrive: select by -reason, -business or -seq")
	}
	if len(opts.Reasons) == 0 {
		for _, r := range Reasons {
			if r != ReasonInDoubt || opts.Force {
				opts.Reasons = append(opts.Reasons, r)
			}
		}
	}
	subjects := make([]string, 0, len(opts.Reasons))
	for _, r := range opts.Reasons {
		if !slices.Contains(Reasons, r) {
			return res, fmt.Errorf("redrive: unknown reason %q (known: %s)", r, strings.Join(Reasons, ", "))
		}
		if r == ReasonInDoubt && !opts.Force {
			return res, ErrNeedForce
		}
		if r == ReasonInDoubt && opts.TakeOvers == nil && !opts.DryRun {
			return res, errors.New("redrive: -force needs the sender's ledger (REDIS_URL or -redis-url)")
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
	err = jsfetch.Pending(ctx, cons, 0, func(m jetstream.Msg, md *jetstream.MsgMetadata) (bool, error) {
		if !opts.Until.IsZero() && md.Timestamp.After(opts.Until) {
			return true, nil // later letters are newer still
		}
		if opts.Limit > 0 && res.Matched >= opts.Limit {
			return true, nil
		}
		if len(opts.Seqs) > 0 && !slices.Contains(opts.Seqs, md.Sequence.Stream) {
			return false, nil
		}
		if opts.Business != "" && letterInfo("", "", "", 0, time.Time{}, m.Data()).BusinessID != opts.Business {
			return false, nil
		}
		res.Matched++
		res.ByReason[m.Headers().Get(HeaderReason)]++
		if opts.DryRun {
			if len(res.Letters) < maxDryRunList {
				h := m.Headers()
				l := letterInfo(h.Get(HeaderReason), h.Get(HeaderError), h.Get(HeaderEventID), md.Sequence.Stream, md.Timestamp, m.Data())
				l.data = nil
				res.Letters = append(res.Letters, l)
			}
			return false, nil
		}
		return false, redriveOne(ctx, js, stream, m, md.Sequence.Stream, opts, &res)
	})
	if err != nil {
		return res, fmt.Errorf("redrive: read %s: %w", StreamDLQ, err)
	}
	return res, nil
}

func redriveOne(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, m jetstream.Msg, seq uint64, opts RedriveOptions, res *RedriveResult) error {
	h := m.Headers()
	if !strings.HasPrefix(h.Get(HeaderSubject), "conversions.") {
		res.Skipped++
		return nil
	}
	if h.Get(HeaderReason) == ReasonInDoubt {
		id := inDoubtLedgerID(h.Get(HeaderLedgerID), m.Data())
		if id == "" {
			res.Skipped++
			return nil
		}
		ttl := cmp.Or(opts.ForceTTL, ledger.DefaultForceTTL)
		if err := opts.TakeOvers.AllowTakeOver(ctx, []string{id}, ttl); err != nil {
			return fmt.Errorf("redrive: %w", err)
		}
	}
	if err := republish(ctx, js, stream, m, seq, "redrive", opts.By); err != nil {
		return fmt.Errorf("redrive: %w", err)
	}
	res.Republished++
	res.Deleted++
	return nil
}

// inDoubtLedgerID is the ledger id of an in_doubt dead letter: its
// Ctm-Ledger-Id header, or for letters written before the sender set it, the
// message's business_id and event_id as the sender joined them then ("" when
// the data has neither).
func inDoubtLedgerID(header string, data []byte) string {
	if header != "" {
		return header
	}
	var c struct {
		BusinessID string `json:"business_id"`
		EventID    string `json:"event_id"`
	}
	if json.Unmarshal(data, &c) != nil || c.BusinessID == "" || c.EventID == "" {
		return ""
	}
	return c.BusinessID + "/" + c.EventID
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
	if dryRun && len(r.Letters) > 0 {
		PrintDeadLetters(w, r.Letters)
		if r.Matched > len(r.Letters) {
			fmt.Fprintf(w, "(the first %d listed)\n", len(r.Letters))
		}
	}
	if !dryRun {
		fmt.Fprintf(w, "republished %d, deleted from DLQ %d, skipped (no original subject) %d\n", r.Republished, r.Deleted, r.Skipped)
	}
}
