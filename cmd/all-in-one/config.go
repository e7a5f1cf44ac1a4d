package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"

	"github.com/ctmpipe/ctmpipe/internal/ingest"
	"github.com/ctmpipe/ctmpipe/internal/sender"
)

// config is all-in-one's own settings; ingest's and sender's come from the
// environment, through their own parsers, with the defaults below.
type config struct {
	DataDir  string // DATA_DIR: NATS store, store journal, CAPI dry-run file
	NATSAddr string // NATS_ADDR: where the embedded NATS listens
	NATSURL  string // NATS_URL: an external NATS instead of the embedded one
	RedisURL string // REDIS_URL: an external Redis instead of the embedded store
	// DevSecrets is true when META_APP_SECRET was unset and the
	// development defaults below are in use.
	DevSecrets bool
	Ingest     ingest.Config
	Sender     sender.Config
}

// Development defaults, used only by all-in-one and only when the variable
// is unset, so that `go run ./cmd/all-in-one` works with nothing configured.
// They are printed in the start banner: they protect nothing, and real
// deployments set their own (ingest and sender have no such defaults).
const (
	devAppSecret   = "dev-app-secret"
	devVerifyToken = "dev-verify-token"
	devAdminToken  = "dev-admin-token"
)

// dryRunFile is where, without an access token, CAPI requests are written.
const dryRunFile = "capi-dryrun.jsonl"

const usageText = `Usage: all-in-one [-data DIR] [-nats-addr HOST:PORT]

Runs ingest and sender in one process, with an embedded NATS server
(JetStream on disk under DIR/nats) and, unless REDIS_URL is set, an embedded
Redis-compatible store journaled to DIR/redis.journal, so that contexts and
the record of sent events survive a restart or a crash. Webhook capture is on
(CAPTURE=off to stop it), so replay -from-capture works against it.

Without CAPI_ACCESS_TOKEN (or CAPI_DATASETS_FILE) it runs dry: the requests the
sender would post are appended to DIR/capi-dryrun.jsonl and logged.

Flags:
`

const usageTail = `
Every setting of ingest and sender applies, from the environment (their
flags are not accepted here): META_APP_SECRET, META_VERIFY_TOKEN and ADMIN_TOKEN are
defaulted here to development values (printed at start) when unset; INGEST_ADDR (:8080), ADMIN_TOKEN, ONPREM_SECRET, ONPREM_WABA_ID,
CONTEXT_TTL, CAPI_ACCESS_TOKEN, CAPI_DATASETS_FILE, CONTEXT_WAIT, LOG_LEVEL…
See go run ./cmd/ingest -help and go run ./cmd/sender -help.
NATS_URL and REDIS_URL, when set, replace the embedded servers. The sender's
metrics join ingest's on INGEST_ADDR/metrics (METRICS_ADDR is not used).

Example:
  go run ./cmd/all-in-one
  META_APP_SECRET=... META_VERIFY_TOKEN=... ADMIN_TOKEN=... go run ./cmd/all-in-one
`

func newFlagSet(c *config, getenv func(string) string) *flag.FlagSet {
	fs := flag.NewFlagSet("all-in-one", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&c.DataDir, "data", envOr(getenv, "DATA_DIR", "data"), "`DIR` for the NATS store, the store journal and the CAPI dry-run file (env DATA_DIR)")
	fs.StringVar(&c.NATSAddr, "nats-addr", envOr(getenv, "NATS_ADDR", "127.0.0.1:4222"), "`HOST:PORT` of the embedded NATS, for order systems and replay (env NATS_ADDR; port 0: any free one)")
	return fs
}

func printUsage(w io.Writer) {
	var c config
	fs := newFlagSet(&c, func(string) string { return "" })
	fs.SetOutput(w)
	io.WriteString(w, usageText)
	fs.PrintDefaults()
	io.WriteString(w, usageTail)
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}

// parseConfig reads the flags and the environment. natsURL is the URL the
// services use when NATS_URL is unset (the embedded server's), which is only
// known once it runs; the sender's and ingest's parsers check everything
// else now, before anything starts.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	var c config
	fs := newFlagSet(&c, getenv)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if _, port, err := net.SplitHostPort(c.NATSAddr); err != nil {
		return c, errors.New("-nats-addr must be HOST:PORT")
	} else if _, err := strconv.Atoi(port); err != nil {
		return c, errors.New("-nats-addr must be HOST:PORT")
	}
	c.NATSURL, c.RedisURL = getenv("NATS_URL"), getenv("REDIS_URL")
	overlay := func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		switch k {
		case "NATS_URL":
			return "nats://embedded" // replaced once the server runs
		case "REDIS_URL":
			return "redis://embedded"
		case "META_APP_SECRET":
			c.DevSecrets = true
			return devAppSecret
		case "META_VERIFY_TOKEN":
			return devVerifyToken
		case "ADMIN_TOKEN":
			return devAdminToken
		case "CAPTURE":
			return "on"
		case "CAPI_DRYRUN_FILE":
			if getenv("CAPI_ACCESS_TOKEN") == "" && getenv("CAPI_DATASETS_FILE") == "" {
				return filepath.Join(c.DataDir, dryRunFile)
			}
		}
		return ""
	}
	var err error
	if c.Ingest, err = ingest.ParseConfig(nil, overlay); err != nil {
		return c, fmt.Errorf("ingest %w", err)
	}
	if c.Sender, err = sender.ParseConfig(nil, overlay); err != nil {
		return c, fmt.Errorf("sender %w", err)
	}
	return c, nil
}
