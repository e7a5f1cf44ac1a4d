package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/forward"
	"github.com/ctmpipe/ctmpipe/internal/localcreds"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/ledger"
)

// letter is a dead letter as -o json shows it.
type letter struct {
	sender.DeadLetterInfo
	Time    time.Time       `json:"time"`
	Message json.RawMessage `json:"message,omitempty"`
}

// dlq runs `ctm dlq list|show|redrive`: the sender's dead-letter code
// (internal/sender) with ctm's flags.
func dlq(ctx context.Context, c *common, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("dlq: say list, show SEQ or redrive (see ctm -h)")
	}
	verb := args[0]
	fs := c.flagSet("dlq " + verb)
	reasons := fs.String("reason", "", "")
	business := fs.String("business", "", "")
	since := fs.String("since", "", "")
	limit := fs.Int("limit", 0, "")
	reveal := fs.Bool("reveal", false, "")
	seqs := fs.String("seq", "", "")
	from := fs.String("from", "", "")
	until := fs.String("until", "", "")
	dry := fs.Bool("dry-run", false, "")
	force := fs.Bool("force", false, "")
	hosts := fs.String("host", "", "")
	redisURL := fs.String("redis-url", getenv("REDIS_URL"), "")
	words, err := c.parse(fs, args[1:])
	if err != nil {
		return err
	}
	if err := c.needNATS("dlq " + verb); err != nil {
		return err
	}
	switch verb {
	case "list":
		if err := wantWords("dlq list", words, 0, "no arguments"); err != nil {
			return err
		}
		if *reasons != "" && !slices.Contains(sender.ListReasons, *reasons) {
			return fmt.Errorf("dlq list: unknown reason %q (known: %v)", *reasons, sender.ListReasons)
		}
		if *limit == 0 {
			*limit = 50
		}
		if *limit < 1 || *limit > 1000 {
			return errors.New("dlq list: -limit must be between 1 and 1000")
		}
		t, err := sender.ParseSince(*since, time.Now())
		if err != nil {
			return fmt.Errorf("dlq list: -since: %w", err)
		}
		return withJS(c, func(js jetstream.JetStream) error {
			letters, more, err := sender.ListDeadLetters(ctx, js, sender.DeadLetterFilter{Reason: *reasons, Business: *business, Since: t}, *limit)
			if err != nil {
				return err
			}
			if c.output == "json" {
				out := make([]letter, 0, len(letters))
				for _, l := range letters {
					out = append(out, letter{DeadLetterInfo: l, Time: l.Time})
				}
				return writeJSON(stdout, map[string]any{"dead_letters": out, "more": more})
			}
			sender.PrintDeadLetters(stdout, letters)
			if more {
				fmt.Fprintf(stdout, "(more: -limit %d shows the newest %d only)\n", *limit, *limit)
			}
			return nil
		})
	case "show":
		if err := wantWords("dlq show", words, 1, "the dead letter's sequence (the SEQ column of ctm dlq list)"); err != nil {
			return err
		}
		seq, err := strconv.ParseUint(words[0], 10, 64)
		if err != nil || seq == 0 {
			return errors.New("dlq show: give the dead letter's sequence (the SEQ column of ctm dlq list)")
		}
		return withJS(c, func(js jetstream.JetStream) error {
			info, msg, err := sender.ShowDeadLetter(ctx, js, seq, *reveal)
			if err != nil {
				return fmt.Errorf("dlq show %d: %w", seq, err)
			}
			if c.output == "json" {
				return writeJSON(stdout, letter{DeadLetterInfo: info, Time: info.Time, Message: msg})
			}
			fmt.Fprintf(stdout, "seq:       %d\ntime:      %s\nreason:    %s\nbusiness:  %s\nevent_id:  %s\nchannel:   %s\nerror:     %s\nmessage:   %s\n",
				info.Seq, info.Time.Format(time.RFC3339), info.Reason, info.BusinessID, info.EventID, info.Channel, info.Error, msg)
			return nil
		})
	case "redrive":
		if err := wantWords("dlq redrive", words, 0, "flags only (-reason, -business, -seq)"); err != nil {
			return err
		}
		sel := redriveSelection{reasons: *reasons, business: *business, seqs: *seqs, since: *since, from: *from, until: *until,
			hosts: *hosts, limit: *limit, dryRun: *dry, force: *force, redisURL: *redisURL}
		return redrive(ctx, c, sel, stdout)
	}
	return fmt.Errorf("dlq: unknown command %q: say list, show SEQ or redrive", verb)
}

// withJS runs f on a JetStream context of c's NATS (an all-in-one's, with
// the credentials in its DATA_DIR, when NATS_URL is unset or local).
func withJS(c *common, f func(jetstream.JetStream) error) error {
	url, creds, found, err := localcreds.NATS(c.natsURL, c.dataDir)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(url, append(creds, nats.Name("ctmpipe-ctm"))...)
	if err != nil {
		return fmt.Errorf("nats: %w (%s)", err, localcreds.Hint(c.dataDir, found))
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return f(js)
}

// redriveSelection is what `ctm dlq redrive` was asked to send again.
type redriveSelection struct {
	reasons, business, seqs, since, from, until, hosts, redisURL string
	limit                                                        int
	dryRun, force                                                bool
}

// window reads -since, -from and -until.
func (s redriveSelection) window(now time.Time) (from, until time.Time, err error) {
	switch {
	case s.since != "" && s.from != "":
		return from, until, errors.New("dlq redrive: give -since or -from, not both")
	case s.since != "":
		d, err := sender.ParseDuration(s.since)
		if err != nil || d <= 0 {
			return from, until, errors.New("dlq redrive: -since: want a duration such as 2h or 3d")
		}
		from = now.Add(-d)
	case s.from != "":
		if from, err = time.Parse(time.RFC3339, s.from); err != nil {
			return from, until, errors.New("dlq redrive: -from: want an RFC 3339 time such as 2025-11-24T09:00:00Z")
		}
	}
	if s.until != "" {
		if until, err = time.Parse(time.RFC3339, s.until); err != nil {
			return from, until, errors.New("dlq redrive: -until: want an RFC 3339 time such as 2025-11-24T18:00:00Z")
		}
	}
	return from, until, nil
}

// redrive publishes dead letters back: the sender's to CONVERSIONS
// (sender.Redrive), forwarding's to FORWARD (forward.Redrive).
func redrive(ctx context.Context, c *common, s redriveSelection, stdout io.Writer) error {
	from, until, err := s.window(time.Now())
	if err != nil {
		return err
	}
	if s.limit < 0 {
		return errors.New("dlq redrive: -limit must not be negative")
	}
	var reasons []string
	for _, r := range strings.Split(s.reasons, ",") {
		if r = strings.TrimSpace(r); r != "" {
			reasons = append(reasons, r)
		}
	}
	if slices.Contains(reasons, sender.ReasonForward) {
		if len(reasons) > 1 {
			return errors.New("dlq redrive: -reason forward goes alone (forwarded webhooks go back to stream FORWARD, the others to CONVERSIONS)")
		}
		opts := forward.RedriveOptions{Limit: s.limit, DryRun: s.dryRun, From: from, Until: until}
		if opts.Seqs, err = sender.ParseSeqs(s.seqs); err != nil {
			return fmt.Errorf("dlq redrive: -seq: %w", err)
		}
		for _, h := range strings.Split(s.hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				opts.Hosts = append(opts.Hosts, h)
			}
		}
		return withJS(c, func(js jetstream.JetStream) error {
			res, err := forward.Redrive(ctx, js, opts)
			res.Print(stdout, opts.DryRun)
			return err
		})
	}
	opts := sender.RedriveOptions{Reasons: reasons, Business: s.business, From: from, Until: until, Limit: s.limit, DryRun: s.dryRun, Force: s.force}
	if opts.Seqs, err = sender.ParseSeqs(s.seqs); err != nil {
		return fmt.Errorf("dlq redrive: -seq: %w", err)
	}
	if len(reasons) == 0 && s.business == "" && len(opts.Seqs) == 0 {
		return fmt.Errorf("dlq redrive: select with -reason (one or more of %s, or forward), -business or -seq", strings.Join(sender.Reasons, ","))
	}
	for _, r := range reasons {
		if !slices.Contains(sender.Reasons, r) {
			return fmt.Errorf("dlq redrive: unknown reason %q (known: %s, forward)", r, strings.Join(sender.Reasons, ", "))
		}
		if r == sender.ReasonInDoubt && !s.force {
			return sender.ErrNeedForce
		}
	}
	if s.force && !s.dryRun {
		// The request to resend in-doubt events is kept in the ledger,
		// never in a message header, which any publisher could set.
		if s.redisURL == "" {
			return errors.New("dlq redrive: -force needs REDIS_URL (or -redis-url): the request to resend is recorded in the sender's ledger")
		}
		redisURL, err := localcreds.Redis(s.redisURL, c.dataDir)
		if err != nil {
			return err
		}
		rdb, err := attribution.NewClient(redisURL)
		if err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		defer rdb.Close()
		opts.TakeOvers = ledger.New(rdb, ledger.DefaultSentTTL)
	}
	return withJS(c, func(js jetstream.JetStream) error {
		res, err := sender.Redrive(ctx, js, opts)
		res.Print(stdout, opts.DryRun)
		return err
	})
}

// writeJSON writes v indented, as -o json does.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
