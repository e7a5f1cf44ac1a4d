package sender

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/localcreds"
)

// RedriveConfig is the configuration of `sender redrive`.
type RedriveConfig struct {
	NATSURL string
	DataDir string // an all-in-one's DATA_DIR: its NATS credentials (internal/localcreds)
	// RedisURL is the sender's Redis, where -force records its request to
	// resend in-doubt events (the ledger); required with -force.
	RedisURL string
	Options  RedriveOptions
}

// ParseRedriveArgs reads the flags of `sender redrive` (after the word
// redrive); now anchors -since. It returns flag.ErrHelp for -h (print
// PrintRedriveUsage then).
func ParseRedriveArgs(args []string, getenv func(string) string, now time.Time) (RedriveConfig, error) {
	fs := flag.NewFlagSet("sender redrive", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	natsURL := fs.String("nats-url", getenv("NATS_URL"), "")
	redisURL := fs.String("redis-url", getenv("REDIS_URL"), "")
	dataDir := fs.String("data-dir", localcreds.DataDir(getenv), "")
	reasons := fs.String("reason", "", "")
	business := fs.String("business", "", "")
	seqs := fs.String("seq", "", "")
	since := fs.String("since", "", "")
	from := fs.String("from", "", "")
	until := fs.String("until", "", "")
	limit := fs.Int("limit", 0, "")
	dry := fs.Bool("dry-run", false, "")
	force := fs.Bool("force", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return RedriveConfig{}, flag.ErrHelp
		}
		return RedriveConfig{}, fmt.Errorf("redrive: %w (see sender redrive -h)", err)
	}
	if fs.NArg() > 0 {
		return RedriveConfig{}, fmt.Errorf("redrive: unexpected argument %q (see sender redrive -h)", fs.Arg(0))
	}
	c := RedriveConfig{NATSURL: *natsURL, DataDir: *dataDir, RedisURL: *redisURL, Options: RedriveOptions{Limit: *limit, DryRun: *dry, Force: *force, Business: *business}}
	for _, r := range strings.Split(*reasons, ",") {
		if r = strings.TrimSpace(r); r != "" {
			c.Options.Reasons = append(c.Options.Reasons, r)
		}
	}
	var err error
	if c.Options.Seqs, err = ParseSeqs(*seqs); err != nil {
		return c, fmt.Errorf("redrive: -seq: %w", err)
	}
	switch {
	case c.NATSURL == "" && !localcreds.Exists(c.DataDir):
		return c, fmt.Errorf("redrive: NATS_URL (or -nats-url) is required, or -data-dir (DATA_DIR) of an all-in-one on this machine (%s does not exist)", localcreds.Path(c.DataDir))
	case len(c.Options.Reasons) == 0 && c.Options.Business == "" && len(c.Options.Seqs) == 0:
		return c, fmt.Errorf("redrive: select with -reason (one or more of %s), -business or -seq", strings.Join(Reasons, ","))
	case *since != "" && *from != "":
		return c, errors.New("redrive: give -since or -from, not both")
	case *limit < 0:
		return c, errors.New("redrive: -limit must not be negative")
	case *force && !*dry && c.RedisURL == "":
		return c, errors.New("redrive: -force needs REDIS_URL (or -redis-url): the request to resend is recorded in the sender's ledger")
	}
	for _, r := range c.Options.Reasons {
		if !slices.Contains(Reasons, r) {
			return c, fmt.Errorf("redrive: unknown reason %q (known: %s)", r, strings.Join(Reasons, ", "))
		}
		if r == ReasonInDoubt && !c.Options.Force {
			return c, ErrNeedForce
		}
	}
	if *since != "" {
		d, err := ParseDuration(*since)
		if err != nil || d <= 0 {
			return c, errors.New("redrive: -since: want a duration such as 2h or 3d")
		}
		c.Options.From = now.Add(-d)
	}
	if c.Options.From.IsZero() && *from != "" {
		if c.Options.From, err = time.Parse(time.RFC3339, *from); err != nil {
			return c, errors.New("redrive: -from: want an RFC 3339 time such as 2025-11-24T09:00:00Z")
		}
	}
	if *until != "" {
		if c.Options.Until, err = time.Parse(time.RFC3339, *until); err != nil {
			return c, errors.New("redrive: -until: want an RFC 3339 time such as 2025-11-24T18:00:00Z")
		}
	}
	return c, nil
}

// PrintRedriveUsage writes the help of `sender redrive`.
func PrintRedriveUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: sender redrive [-reason R[,R...]] [-business B] [-seq N[,N...]] [-since DUR | -from TIME] [-until TIME] [-limit N] [-dry-run] [-force]

Publishes dead letters from stream DLQ back to CONVERSIONS (their original
subject and bytes) and deletes each from DLQ once JetStream has stored it
again. The sender then handles them like new messages: an event Meta already
accepted is still never sent twice.

  -reason R[,R]   dead-letter reasons to redrive: unattributed (after
                  the context arrived), no_click_id (after a referral with
                  a ctwa_clid arrived), rejected (after fixing what Meta
                  refused), expired, invalid, in_doubt (needs -force).
                  Give -reason, -business or -seq (any together); without
                  -reason every reason but in_doubt is read
  -business B     only letters of business_id B
  -seq N[,N]      only these DLQ sequences (from sender dlq list)
  -since DUR      only letters dead-lettered in the last DUR (e.g. 2h, 3d)
  -from TIME      only letters dead-lettered at or after TIME (RFC 3339)
  -until TIME     only letters dead-lettered at or before TIME (RFC 3339)
  -limit N        at most N letters (default: all)
  -dry-run        count what would be redriven; change nothing
  -force          allow in_doubt. An in_doubt event was posted to Meta but no
                  answer came back (the sender died or the connection broke), so
                  Meta may already have it, and Meta does not deduplicate
                  business-messaging events: resending may count the
                  conversion twice. Check Events Manager first, then redrive
                  only those that are missing. The request to resend is
                  recorded in the sender's ledger in Redis (for 24h), never in
                  the message: the sender ignores any header asking for it.
  -nats-url URL   NATS server (default $NATS_URL; unset: the all-in-one's, nats://127.0.0.1:4222)
  -data-dir DIR   the all-in-one's data directory (default $DATA_DIR, else ./data),
                  whose credentials.json logs in to a NATS on this machine
  -redis-url URL  the sender's Redis (default $REDIS_URL; needed by -force)
`)
}

// ParseSeqs reads a comma-separated list of DLQ sequences ("" is none).
func ParseSeqs(s string) ([]uint64, error) {
	var out []uint64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil || n == 0 {
			return nil, errors.New("want positive sequence numbers such as 42,43")
		}
		out = append(out, n)
	}
	return out, nil
}
