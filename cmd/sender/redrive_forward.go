package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/forward"
	"github.com/ctmpipe/ctmpipe/internal/localcreds"
	"github.com/ctmpipe/ctmpipe/internal/sender"
)

// reasonForward is the dead-letter reason of webhook bodies forwarding gave
// up on (stream DLQ, subject dlq.forward): internal/forward redrives them,
// back to stream FORWARD, not the sender's CONVERSIONS.
const reasonForward = "forward"

// forwardReason reports whether args ask `redrive -reason forward`, and
// refuses forward mixed with the sender's reasons: the two go to different
// streams.
func forwardReason(args []string) (bool, error) {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		var v string
		switch {
		case a == "reason" && i+1 < len(args):
			v = args[i+1]
		case strings.HasPrefix(a, "reason="):
			v = strings.TrimPrefix(a, "reason=")
		default:
			continue
		}
		has := false
		for _, r := range strings.Split(v, ",") {
			if strings.TrimSpace(r) == reasonForward {
				has = true
			}
		}
		if has && strings.TrimSpace(v) != reasonForward {
			return false, errors.New("redrive: -reason forward goes alone (forwarded webhooks go back to stream FORWARD, the others to CONVERSIONS)")
		}
		return has, nil
	}
	return false, nil
}

// redriveForward runs `sender redrive -reason forward [-host H,...]`.
func redriveForward(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sender redrive -reason forward", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	natsURL := fs.String("nats-url", getenv("NATS_URL"), "")
	dataDir := fs.String("data-dir", localcreds.DataDir(getenv), "")
	fs.String("reason", "", "")
	hosts := fs.String("host", "", "")
	since := fs.String("since", "", "")
	from := fs.String("from", "", "")
	until := fs.String("until", "", "")
	limit := fs.Int("limit", 0, "")
	dry := fs.Bool("dry-run", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(stdout, forwardUsage)
			return nil
		}
		return fmt.Errorf("redrive: %w (see sender redrive -reason forward -h)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("redrive: unexpected argument %q", fs.Arg(0))
	}
	opts := forward.RedriveOptions{Limit: *limit, DryRun: *dry}
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			opts.Hosts = append(opts.Hosts, h)
		}
	}
	switch {
	case *natsURL == "" && !localcreds.Exists(*dataDir):
		return fmt.Errorf("redrive: NATS_URL (or -nats-url) is required, or -data-dir (DATA_DIR) of an all-in-one on this machine (%s does not exist)", localcreds.Path(*dataDir))
	case *since != "" && *from != "":
		return errors.New("redrive: give -since or -from, not both")
	case *limit < 0:
		return errors.New("redrive: -limit must not be negative")
	}
	var err error
	if *since != "" {
		d, err := sender.ParseDuration(*since)
		if err != nil || d <= 0 {
			return errors.New("redrive: -since: want a duration such as 2h or 3d")
		}
		opts.From = time.Now().Add(-d)
	}
	if *from != "" {
		if opts.From, err = time.Parse(time.RFC3339, *from); err != nil {
			return errors.New("redrive: -from: want an RFC 3339 time such as 2025-11-24T09:00:00Z")
		}
	}
	if *until != "" {
		if opts.Until, err = time.Parse(time.RFC3339, *until); err != nil {
			return errors.New("redrive: -until: want an RFC 3339 time such as 2025-11-24T18:00:00Z")
		}
	}
	nc, js, err := connectJS(*natsURL, *dataDir, "ctmpipe-sender-redrive")
	if err != nil {
		return err
	}
	defer nc.Close()
	res, err := forward.Redrive(ctx, js, opts)
	res.Print(stdout, opts.DryRun)
	return err
}

const forwardUsage = `Usage: sender redrive -reason forward [-host H[,H...]] [-since DUR | -from TIME] [-until TIME] [-limit N] [-dry-run]

Publishes the webhook bodies forwarding gave up on (dead letters dlq.forward,
after FORWARD_MAX_AGE) back to stream FORWARD, where ingest's forwarder
delivers them again to their destination. Letters whose destination is no
longer in FORWARD_URLS stay in DLQ.

  -host H[,H]     only those for these destination hosts (default: all)
  -since DUR      only letters dead-lettered in the last DUR (e.g. 2h, 3d)
  -from TIME      only letters dead-lettered at or after TIME (RFC 3339)
  -until TIME     only letters dead-lettered at or before TIME (RFC 3339)
  -limit N        at most N letters (default: all)
  -dry-run        count what would be redriven; change nothing
  -nats-url URL   NATS server (default $NATS_URL; unset: the all-in-one's)
  -data-dir DIR   the all-in-one's data directory (default $DATA_DIR, else ./data)
`
