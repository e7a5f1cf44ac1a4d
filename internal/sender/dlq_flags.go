package sender

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/localcreds"
)

// DLQCommand is `sender dlq list` or `sender dlq show` as parsed.
type DLQCommand struct {
	NATSURL string
	DataDir string // an all-in-one's DATA_DIR: its NATS credentials (internal/localcreds)
	Show    uint64 // show: the sequence; 0: list
	Reveal  bool   // show: personal ids unmasked
	Filter  DeadLetterFilter
	Limit   int
}

// ParseSince reads a -since (or since=) value: an RFC 3339 time, or a
// duration back from now (1h, 3d).
func ParseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := ParseDuration(v)
	if err != nil || d <= 0 {
		return time.Time{}, errors.New("want an RFC 3339 time such as 2025-11-24T09:00:00Z or a duration such as 1h or 3d")
	}
	return now.Add(-d), nil
}

// ParseDLQArgs reads the arguments after `sender dlq`. It returns
// flag.ErrHelp for -h (print PrintDLQUsage then).
func ParseDLQArgs(args []string, getenv func(string) string, now time.Time) (DLQCommand, error) {
	var c DLQCommand
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		if len(args) == 0 {
			return c, errors.New("dlq: say list or show SEQ (see sender dlq -h)")
		}
		return c, flag.ErrHelp
	}
	verb, rest := args[0], args[1:]
	fs := flag.NewFlagSet("sender dlq "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	natsURL := fs.String("nats-url", getenv("NATS_URL"), "")
	dataDir := fs.String("data-dir", localcreds.DataDir(getenv), "")
	switch verb {
	case "list":
		reason := fs.String("reason", "", "")
		business := fs.String("business", "", "")
		since := fs.String("since", "", "")
		limit := fs.Int("limit", 50, "")
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return c, err
			}
			return c, fmt.Errorf("dlq list: %w (see sender dlq -h)", err)
		}
		if fs.NArg() > 0 {
			return c, fmt.Errorf("dlq list: unexpected argument %q (see sender dlq -h)", fs.Arg(0))
		}
		if *reason != "" && !isReason(*reason) {
			return c, fmt.Errorf("dlq list: unknown reason %q (known: %v)", *reason, ListReasons)
		}
		if *limit < 1 || *limit > 1000 {
			return c, errors.New("dlq list: -limit must be between 1 and 1000")
		}
		t, err := ParseSince(*since, now)
		if err != nil {
			return c, fmt.Errorf("dlq list: -since: %w", err)
		}
		c.Filter, c.Limit = DeadLetterFilter{Reason: *reason, Business: *business, Since: t}, *limit
	case "show":
		reveal := fs.Bool("reveal", false, "")
		// The sequence may come before or after the flags.
		var seqArg string
		if len(rest) > 0 && rest[0] != "" && rest[0][0] != '-' {
			seqArg, rest = rest[0], rest[1:]
		}
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return c, err
			}
			return c, fmt.Errorf("dlq show: %w (see sender dlq -h)", err)
		}
		if seqArg == "" && fs.NArg() > 0 {
			seqArg = fs.Arg(0)
		}
		n, err := strconv.ParseUint(seqArg, 10, 64)
		if err != nil || n == 0 {
			return c, errors.New("dlq show: give the dead letter's sequence (the SEQ column of sender dlq list)")
		}
		c.Show, c.Reveal = n, *reveal
	default:
		return c, fmt.Errorf("dlq: unknown command %q: say list or show SEQ", verb)
	}
	c.NATSURL, c.DataDir = *natsURL, *dataDir
	if c.NATSURL == "" && !localcreds.Exists(c.DataDir) {
		return c, fmt.Errorf("dlq: NATS_URL (or -nats-url) is required, or -data-dir (DATA_DIR) of an all-in-one on this machine (%s does not exist)", localcreds.Path(c.DataDir))
	}
	return c, nil
}

func isReason(r string) bool {
	for _, x := range ListReasons {
		if x == r {
			return true
		}
	}
	return false
}

// PrintDLQUsage writes the help of `sender dlq`.
func PrintDLQUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: sender dlq list [-reason R] [-business B] [-since T] [-limit N]
       sender dlq show SEQ [-reveal]

Reads stream DLQ, where the sender puts what it could not send, with why.

list prints the newest dead letters first: SEQ (the DLQ sequence), TIME,
REASON, BUSINESS, EVENT_ID and ERROR (the rule broken, or Meta's message).
  -reason R     only this reason: invalid, expired, unattributed, no_click_id,
                rejected, in_doubt
  -business B   only this business_id
  -since T      only dead-lettered since T: RFC 3339, or a duration (1h, 3d)
  -limit N      at most N (default 50, at most 1000)

show prints one dead letter with its message (the conversion as published).
Personal ids (user_id, ctwa_clid, ...) are masked to their last 4 characters
unless -reveal is given.

  -nats-url URL   NATS server (default $NATS_URL; unset: the all-in-one's, nats://127.0.0.1:4222)
  -data-dir DIR   the all-in-one's data directory (default $DATA_DIR, else ./data),
                  whose credentials.json logs in to a NATS on this machine

To send dead letters again, see sender redrive -h (-reason, -business, -seq).
`)
}
