package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/localcreds"
	"github.com/ctmpipe/ctmpipe/internal/settings"
)

// config is everything replay needs, from flags and the environment.
type config struct {
	Inputs       []string
	Target       string
	OnPremTarget string
	Concurrency  int
	Rate         float64
	Retries      int
	Backoff      time.Duration
	Timeout      time.Duration
	DryRun       bool
	MaxFailures  int

	FromCapture bool
	NATSURL     string
	DataDir     string // an all-in-one's DATA_DIR: its NATS credentials (internal/localcreds)
	Since       time.Duration
	From, Until time.Time

	// From the environment only: secrets must not show up in ps.
	Secret       []byte // the first of META_APP_SECRET's comma-separated list
	OnPremSecret string
	OnPremWABAID string
}

const usageHead = `Usage: replay [flags] INPUT...
       replay [flags] -from-capture (-since DUR | -from TIME [-until TIME])

Replays captured Meta webhook bodies into ingest: each body is checked, signed
with the app secret (X-Hub-Signature-256 over the exact bytes sent) and POSTed
to -target. WhatsApp On-Premises bodies (top-level contacts/messages, or
captured on /webhook/onprem) go to -onprem-target with the X-Onprem-Secret
header instead.

INPUT, in any mix and order:
  FILE.json      one body (a JSON array, like expected.json, is not a body)
  FILE.jsonl     one body a line (also .ndjson); blank lines are skipped
  DIR            its *.json and *.jsonl files in name order (not subdirectories)
  -              stdin: JSONL, or a single JSON body (pretty-printed is fine)
-from-capture adds the bodies ingest captured in the JetStream stream WEBHOOKS.

Bodies that are not JSON or not a webhook ingest understands are reported as
file:line with the reason, are not sent, and do not stop the rest.

Flags:
`

const usageTail = `
Environment:
  META_APP_SECRET  app secret(s), comma-separated; the first signs. Required
                   unless -dry-run. Never a flag, never printed.
  ONPREM_SECRET    shared secret for On-Premises bodies (X-Onprem-Secret)
  ONPREM_WABA_ID   WABA id ingest gives On-Premises touches (-dry-run output)
  NATS_URL         default for -nats
  DATA_DIR         default for -data-dir

Output: progress on stderr (a bar on a terminal, a line every 5s otherwise),
then a summary: status codes, and the first failures as file:line: reason.
Bodies are never printed, except by -dry-run.

-dry-run prints, on stdout, one JSON line per body: its source (file:line),
the route, and the touches ingest would store. Those include user ids and
click ids (wa_id, PSID, IGSID, ctwa_clid): this is a debugging tool you run
on your own data, and its stdout is yours, not a log. Do not ship it to one.

Exit status: 0 all accepted, 1 any body failed (or the capture could not be
read), 2 usage or configuration error.

Examples:
  # Replay the examples into a local ingest:
  META_APP_SECRET=dev replay examples/webhooks
  ONPREM_SECRET=dev-onprem-secret-0001 META_APP_SECRET=dev replay examples/onprem
  # A day of JSONL at 50 requests a second, 8 at a time:
  replay -rate 50 -concurrency 8 bodies-2026-11-24.jsonl
  # What would the last hour of the capture store?
  replay -dry-run -from-capture -nats-url nats://127.0.0.1:4222 -since 1h
  # A time range of the capture into a staging ingest:
  replay -target https://staging.example/webhook -from-capture \
    -from 2026-11-24T10:00:00Z -until 2026-11-24T11:00:00Z
  # A body from the clipboard:
  pbpaste | replay -dry-run -
`

// newFlagSet declares the flags on c; getenv supplies env defaults.
func newFlagSet(c *config, getenv func(string) string, since, from, until *string) *flag.FlagSet {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&c.Target, "target", "http://127.0.0.1:8080/webhook", "ingest `URL` for Cloud API, Messenger and Instagram bodies")
	fs.StringVar(&c.OnPremTarget, "onprem-target", "", "ingest `URL` for On-Premises bodies (default: -target + \"/onprem\")")
	fs.IntVar(&c.Concurrency, "concurrency", 4, "requests in flight at most")
	fs.Float64Var(&c.Rate, "rate", 0, "at most `R` requests a second, retries included (0: no limit)")
	fs.IntVar(&c.Retries, "retries", 3, "retries of a body on 5xx or connection errors, with growing waits (none on 4xx)")
	fs.DurationVar(&c.Backoff, "backoff", time.Second, "wait before the first retry; it doubles each retry (up to 1m, jittered)")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "timeout of one request")
	fs.BoolVar(&c.DryRun, "dry-run", false, "send nothing; print one JSON line per body with what ingest would store (ids included)")
	fs.IntVar(&c.MaxFailures, "max-failures", 10, "failures listed in the summary")
	fs.BoolVar(&c.FromCapture, "from-capture", false, "also replay the JetStream capture (stream WEBHOOKS) in a time range")
	natsDefault := getenv("NATS_URL")
	if natsDefault == "" {
		natsDefault = "nats://127.0.0.1:4222"
	}
	fs.StringVar(&c.NATSURL, "nats-url", natsDefault, "NATS `URL` of the capture (env NATS_URL; -nats is the old spelling)")
	fs.StringVar(&c.DataDir, "data-dir", localcreds.DataDir(getenv), "the all-in-one's data `directory` (env DATA_DIR), whose credentials.json logs in to a NATS on this machine")
	fs.StringVar(since, "since", "", "capture: bodies received in the last `DURATION` (1h, 30m)")
	fs.StringVar(from, "from", "", "capture: bodies received at or after `TIME` (RFC 3339, 2026-11-24T10:00:00Z)")
	fs.StringVar(until, "until", "", "capture: bodies received before `TIME` (RFC 3339; default: to the end of the stream)")
	return fs
}

// printUsage writes the --help text.
func printUsage(w io.Writer) {
	var c config
	var s, f, u string
	fs := newFlagSet(&c, func(string) string { return "" }, &s, &f, &u)
	fs.SetOutput(w)
	io.WriteString(w, usageHead)
	fs.PrintDefaults()
	io.WriteString(w, usageTail)
}

// parseConfig reads flags (interleaved with inputs, so "replay x.json
// -dry-run" works) and the environment. It returns flag.ErrHelp for -h.
func parseConfig(args []string, getenv func(string) string, now time.Time) (config, error) {
	var c config
	var since, from, until string
	fs := newFlagSet(&c, getenv, &since, &from, &until)
	for rest := settings.RenameFlags(args, map[string]string{"nats": "nats-url"}); ; {
		if err := fs.Parse(rest); err != nil {
			return c, err
		}
		used := len(rest) - len(fs.Args())
		terminated := used > 0 && rest[used-1] == "--"
		rest = fs.Args()
		if terminated {
			c.Inputs = append(c.Inputs, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		c.Inputs = append(c.Inputs, rest[0])
		rest = rest[1:]
	}
	if err := c.check(since, from, until, now); err != nil {
		return c, err
	}
	for s := range strings.SplitSeq(getenv("META_APP_SECRET"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.Secret = []byte(s)
			break
		}
	}
	if len(c.Secret) == 0 && !c.DryRun {
		return c, errors.New("META_APP_SECRET is not set (it signs every body; -dry-run needs none)")
	}
	c.OnPremSecret = getenv("ONPREM_SECRET")
	c.OnPremWABAID = getenv("ONPREM_WABA_ID")
	return c, nil
}

// check validates the flags and turns the time range into From and Until.
func (c *config) check(since, from, until string, now time.Time) error {
	switch {
	case len(c.Inputs) == 0 && !c.FromCapture:
		return errors.New("nothing to replay: give files, directories, - or -from-capture")
	case c.Concurrency < 1:
		return errors.New("-concurrency must be at least 1")
	case c.Rate < 0:
		return errors.New("-rate must not be negative")
	case c.Retries < 0:
		return errors.New("-retries must not be negative")
	case c.Timeout <= 0 || c.Backoff < 0:
		return errors.New("-timeout must be positive and -backoff not negative")
	}
	stdin := 0
	for _, in := range c.Inputs {
		if in == "-" {
			stdin++
		}
	}
	if stdin > 1 {
		return errors.New("- (stdin) given more than once")
	}
	for _, t := range []struct{ flag, val string }{{"-target", c.Target}, {"-onprem-target", c.OnPremTarget}} {
		if t.val == "" {
			continue
		}
		if u, err := url.Parse(t.val); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s must be an http or https URL", t.flag)
		}
	}
	return c.checkCapture(since, from, until, now)
}

func (c *config) checkCapture(since, from, until string, now time.Time) error {
	if !c.FromCapture {
		if since != "" || from != "" || until != "" {
			return errors.New("-since, -from and -until need -from-capture")
		}
		return nil
	}
	switch {
	case since != "" && from != "":
		return errors.New("give -since or -from, not both")
	case since == "" && from == "":
		return errors.New("-from-capture needs -since DURATION or -from TIME")
	case since != "":
		d, err := time.ParseDuration(since)
		if err != nil || d <= 0 {
			return fmt.Errorf("-since %q is not a positive duration (like 1h or 30m)", since)
		}
		c.From = now.Add(-d)
	default:
		t, err := time.Parse(time.RFC3339Nano, from)
		if err != nil {
			return fmt.Errorf("-from %q is not an RFC 3339 time (like 2026-11-24T10:00:00Z)", from)
		}
		c.From = t
	}
	if until != "" {
		t, err := time.Parse(time.RFC3339Nano, until)
		if err != nil {
			return fmt.Errorf("-until %q is not an RFC 3339 time (like 2026-11-24T11:00:00Z)", until)
		}
		if !t.After(c.From) {
			return errors.New("-until must be after the start of the range")
		}
		c.Until = t
	}
	return nil
}
