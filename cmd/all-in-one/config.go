package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ctmpipe/ctmpipe/internal/ingest"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/settings"
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

const usageText = `Usage: all-in-one [flags]

Runs ingest and sender in one process, with an embedded NATS server
(JetStream on disk under DATA_DIR/nats) and, unless REDIS_URL is set, an
embedded Redis-compatible store journaled to DATA_DIR/redis.journal, so that
contexts and the record of sent events survive a restart or a crash. Webhook
capture is on (CAPTURE=off to stop it), so replay -from-capture works
against it.

Without CAPI_ACCESS_TOKEN (or CAPI_DATASETS_FILE) it runs dry: the requests the
sender would post are appended to DATA_DIR/capi-dryrun.jsonl and logged.

Every setting of ingest and sender applies, as an environment variable or as
its flag (flags win). META_APP_SECRET, META_VERIFY_TOKEN and ADMIN_TOKEN default
here to development values (printed at start) when unset. NATS_URL and
REDIS_URL, when set, replace the embedded servers. The sender's metrics join
ingest's on INGEST_ADDR/metrics.

Settings:
`

const usageTail = `
Example:
  go run ./cmd/all-in-one
  go run ./cmd/all-in-one -data /tmp/ctm -addr 127.0.0.1:8081 -nats-addr 127.0.0.1:4223
  META_APP_SECRET=... META_VERIFY_TOKEN=... ADMIN_TOKEN=... go run ./cmd/all-in-one
`

// ownSettings are all-in-one's own knobs; allSettings adds ingest's and the
// sender's.
var ownSettings = []settings.Setting{
	{Env: "DATA_DIR", Flag: "data", Default: "data", Help: "directory for the NATS store, the store journal and the CAPI dry-run file (locked while in use)"},
	{Env: "NATS_ADDR", Flag: "nats-addr", Default: "127.0.0.1:4222", Help: "HOST:PORT of the embedded NATS, for order systems and replay (port 0: any free one)"},
}

// allSettings is every setting all-in-one takes, with its own defaults where
// they differ from the services' (CAPTURE). The sender's METRICS_ADDR is left
// out: its metrics are served with ingest's.
func allSettings() []settings.Setting {
	var snd []settings.Setting
	for _, d := range sender.Settings() {
		if d.Env != "METRICS_ADDR" {
			snd = append(snd, d)
		}
	}
	all, err := settings.Merge(ownSettings, ingest.Settings(), snd)
	if err != nil {
		panic(err) // a programming error, caught by TestAllSettingsMerge
	}
	for i := range all {
		d := &all[i]
		switch d.Env {
		case "CAPTURE":
			d.Default = "on"
		case "REDIS_URL":
			d.Help = "an external Redis instead of the embedded store (redis://, rediss://, unix://, redis+cluster://, redis+sentinel://)"
		case "NATS_URL":
			d.Help = "an external NATS (with JetStream) instead of the embedded one"
		case "META_APP_SECRET", "META_VERIFY_TOKEN", "ADMIN_TOKEN":
			d.Help = strings.Replace(d.Help, "required, env only", "env only; unset: a development value", 1)
		case "CAPI_DRYRUN_FILE":
			d.Help = "append the requests to this JSONL file instead of posting them (unset and no token: DATA_DIR/" + dryRunFile + ")"
		case "SHUTDOWN_TIMEOUT":
			d.Default = ""
			d.Help = "how long in-flight webhooks and the sender's batch may take after SIGTERM (unset: 15s and 25s; at least HTTP_TIMEOUT)"
		}
	}
	return all
}

func printUsage(w io.Writer) {
	io.WriteString(w, usageText)
	settings.PrintUsage(w, allSettings())
	io.WriteString(w, usageTail)
}

// parseConfig reads the flags and the environment: the flags given are laid
// over the environment, and ingest's and the sender's own parsers read the
// result, so that each keeps its defaults and its checks. natsURL is the URL
// the services use when NATS_URL is unset (the embedded server's), which is
// only known once it runs.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	var c config
	given, err := settings.Flags("all-in-one", args, allSettings())
	if err != nil {
		return c, err
	}
	env := func(k string) string {
		if v, ok := given[k]; ok {
			return v
		}
		return getenv(k)
	}
	c.DataDir = envOr(env, "DATA_DIR", "data")
	c.NATSAddr = envOr(env, "NATS_ADDR", "127.0.0.1:4222")
	if _, port, err := net.SplitHostPort(c.NATSAddr); err != nil {
		return c, errors.New("config: -nats-addr (NATS_ADDR) must be HOST:PORT")
	} else if _, err := strconv.Atoi(port); err != nil {
		return c, errors.New("config: -nats-addr (NATS_ADDR) must be HOST:PORT")
	}
	c.NATSURL, c.RedisURL = env("NATS_URL"), env("REDIS_URL")
	overlay := func(k string) string {
		if v := env(k); v != "" {
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
			if env("CAPI_ACCESS_TOKEN") == "" && env("CAPI_DATASETS_FILE") == "" {
				return filepath.Join(c.DataDir, dryRunFile)
			}
		}
		return ""
	}
	if c.Ingest, err = ingest.ParseConfig(nil, overlay); err != nil {
		return c, fmt.Errorf("ingest %w", err)
	}
	if c.Sender, err = sender.ParseConfig(nil, overlay); err != nil {
		return c, fmt.Errorf("sender %w", err)
	}
	return c, nil
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}
