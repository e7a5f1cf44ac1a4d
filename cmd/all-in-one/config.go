package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/embedstore"
	"github.com/ctmpipe/ctmpipe/internal/ingest"
	"github.com/ctmpipe/ctmpipe/internal/localcreds"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/services"
	"github.com/ctmpipe/ctmpipe/internal/settings"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// config is all-in-one's own settings; ingest's and sender's come from the
// environment, through their own parsers, with the defaults below.
type config struct {
	DataDir  string // DATA_DIR: NATS store, store journal, CAPI dry-run file
	NATSAddr string // NATS_ADDR: where the embedded NATS listens
	NATSURL  string // NATS_URL: an external NATS instead of the embedded one
	RedisURL string // REDIS_URL: an external Redis instead of the embedded store
	// NATSUser and NATSPassword (NATS_USER, NATS_PASSWORD) are a second
	// user of the embedded NATS, for publishers on other machines; the
	// generated one in DATA_DIR/credentials.json serves this machine.
	NATSUser, NATSPassword string
	// ScriptBudget (STORE_SCRIPT_BUDGET) bounds one Lua script in the
	// embedded store.
	ScriptBudget time.Duration
	// DevSecrets is true when none of META_APP_SECRET, META_VERIFY_TOKEN
	// and ADMIN_TOKEN was set: the development values below are in use and
	// every listener is bound to 127.0.0.1.
	DevSecrets bool
	// Rebound names the listener settings moved to 127.0.0.1 in
	// development mode (their host was not a loopback one).
	Rebound []string
	// DevRegistryKey is the development key file in use when REGISTRY_KEY
	// is not set (filled in by run, which creates it); "" otherwise.
	DevRegistryKey string
	Ingest         ingest.Config
	Services       services.Config
	Sender         sender.Config
}

// Development values, used only by all-in-one and only when none of the
// three is set, so that `go run ./cmd/all-in-one` works with nothing
// configured. They protect nothing (they are printed in the start banner),
// so every listener is then bound to 127.0.0.1. With some set and others
// not, all-in-one refuses to start: a deployment that set its app secret
// must never answer the handshake or the admin API with a value printed
// here. Ingest and sender have no such values.
const (
	devAppSecret   = "dev-app-secret"
	devVerifyToken = "dev-verify-token"
	devAdminToken  = "dev-admin-token"
	// devIntakeToken is at least intake's 16 characters.
	devIntakeToken = "dev-intake-token-0"
)

// devRule is what -help says of the three secrets, truthfully.
const devRule = "set META_APP_SECRET, META_VERIFY_TOKEN and ADMIN_TOKEN together, or none for development values with every listener on 127.0.0.1"

// devSecrets are the settings development mode fills in, in the order the
// refusal names them.
var devSecrets = []string{"META_APP_SECRET", "META_VERIFY_TOKEN", "ADMIN_TOKEN"}

// dryRunFile is where, without an access token, CAPI requests are written.
const dryRunFile = "capi-dryrun.jsonl"

const usageText = `Usage: all-in-one [flags]

Runs ingest and sender in one process, with an embedded NATS server
(JetStream on disk under DATA_DIR/nats) and, unless REDIS_URL is set, an
embedded Redis-compatible store journaled to DATA_DIR/store, so that
contexts and the record of sent events survive a restart or a crash. Webhook
capture is on (CAPTURE=off to stop it), so replay -from-capture works
against it.

Without CAPI_ACCESS_TOKEN (or CAPI_DATASETS_FILE) it runs dry: the requests the
sender would post are appended to DATA_DIR/capi-dryrun.jsonl and logged.

Every setting of ingest and sender applies, as an environment variable or as
its flag (flags win). Set all three of META_APP_SECRET, META_VERIFY_TOKEN and
ADMIN_TOKEN, or none: with none, development values (printed at start) are
used and every listener is bound to 127.0.0.1; with some but not all,
all-in-one names the missing ones and stops. NATS_URL and REDIS_URL, when
set, replace the embedded servers. The sender's metrics join
ingest's on ADMIN_ADDR/metrics, next to the admin API.

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
	{Env: "NATS_ADDR", Flag: "nats-addr", Default: "127.0.0.1:4222", Help: "HOST:PORT of the embedded NATS, for order systems and replay (port 0: any free one; a non-loopback host needs NATS_USER and NATS_PASSWORD)"},
	{Env: "NATS_USER", Help: "a user of the embedded NATS for publishers on other machines, with NATS_PASSWORD (env only; this machine's tools use the generated one in DATA_DIR/" + localcreds.File + ")"},
	{Env: "NATS_PASSWORD", Help: "NATS_USER's password (env only)"},
	{Env: "STORE_SCRIPT_BUDGET", Flag: "store-script-budget", Default: embedstore.DefaultScriptBudget.String(), Help: "how long one Lua script may run in the embedded store; past it the script answers an error and the store serves again"},
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
	all, err := settings.Merge(ownSettings, services.IngestSettings(), snd)
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
		case "META_APP_SECRET", "META_VERIFY_TOKEN":
			d.Help = strings.Replace(d.Help, "required, env only", "env only; "+devRule, 1)
		case "ADMIN_TOKEN":
			d.Help = "bearer token of the admin listener's API (/v1/...) and /metrics (env only; " + devRule + ")"
		case "INTAKE_TOKEN":
			d.Help += "; with none of the three secrets set: " + devIntakeToken
		case "REGISTRY_KEY":
			d.Help = strings.Replace(d.Help, "unset: the registry stores no secrets", "unset: a development key kept in DATA_DIR/"+registry.DevKeyFile, 1)
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
	var missing []string
	for _, k := range devSecrets {
		if env(k) == "" {
			missing = append(missing, k)
		}
	}
	switch len(missing) {
	case len(devSecrets):
		c.DevSecrets = true
	case 0:
	default:
		set := setOf(env)
		return c, fmt.Errorf("config: %s %s not set but %s %s: set all three of %s for real webhooks, or none for development values (every listener on 127.0.0.1)",
			joinNames(missing), plural(missing, "is", "are"), joinNames(set), plural(set, "is", "are"), strings.Join(devSecrets, ", "))
	}
	// listen is a listener address, moved to 127.0.0.1 in development mode.
	listen := func(k, def string) string {
		addr := envOr(env, k, def)
		if !c.DevSecrets || addr == "" {
			return addr
		}
		if l, moved := loopback(addr); moved {
			c.Rebound = append(c.Rebound, k)
			return l
		}
		return addr
	}
	c.DataDir = envOr(env, "DATA_DIR", "data")
	c.NATSAddr = listen("NATS_ADDR", "127.0.0.1:4222")
	if _, port, err := net.SplitHostPort(c.NATSAddr); err != nil {
		return c, errors.New("config: -nats-addr (NATS_ADDR) must be HOST:PORT")
	} else if _, err := strconv.Atoi(port); err != nil {
		return c, errors.New("config: -nats-addr (NATS_ADDR) must be HOST:PORT")
	}
	c.NATSURL, c.RedisURL = env("NATS_URL"), env("REDIS_URL")
	c.NATSUser, c.NATSPassword = env("NATS_USER"), env("NATS_PASSWORD")
	if err := checkNATSAuth(c); err != nil {
		return c, err
	}
	if c.ScriptBudget, err = time.ParseDuration(envOr(env, "STORE_SCRIPT_BUDGET", embedstore.DefaultScriptBudget.String())); err != nil || c.ScriptBudget <= 0 {
		return c, errors.New("config: -store-script-budget (STORE_SCRIPT_BUDGET) must be a positive duration, such as 1s")
	}
	addrs := map[string]string{
		"INGEST_ADDR": listen("INGEST_ADDR", ingest.DefaultAddr),
		"ADMIN_ADDR":  listen("ADMIN_ADDR", ingest.DefaultAdminAddr),
		"PPROF_ADDR":  listen("PPROF_ADDR", ""),
	}
	overlay := func(k string) string {
		if a, ok := addrs[k]; ok {
			return a
		}
		if v := env(k); v != "" {
			return v
		}
		switch k {
		case "NATS_URL":
			return "nats://embedded" // replaced once the server runs
		case "REDIS_URL":
			return "redis://embedded"
		case "META_APP_SECRET":
			return devAppSecret
		case "META_VERIFY_TOKEN":
			return devVerifyToken
		case "ADMIN_TOKEN":
			return devAdminToken
		case "INTAKE_TOKEN":
			if c.DevSecrets {
				return devIntakeToken
			}
		case "CAPTURE":
			return "on"
		case "CAPI_DRYRUN_FILE":
			if env("CAPI_ACCESS_TOKEN") == "" && env("CAPI_DATASETS_FILE") == "" {
				return filepath.Join(c.DataDir, dryRunFile)
			}
		}
		return ""
	}
	if c.Ingest, c.Services, err = services.ParseIngest(nil, overlay); err != nil {
		return c, fmt.Errorf("ingest %w", err)
	}
	if c.Sender, err = sender.ParseConfig(nil, overlay); err != nil {
		return c, fmt.Errorf("sender %w", err)
	}
	if c.RedisURL == "" && c.Ingest.Replicas.Min > 0 {
		// The embedded store is one process with no replicas: every write
		// would wait REDIS_REPLICA_TIMEOUT and be refused.
		return c, errors.New("config: REDIS_MIN_REPLICAS must be 0 with the embedded store (it has no replicas); set REDIS_URL to a Redis with replicas to use it")
	}
	return c, nil
}

// checkNATSAuth refuses an embedded NATS reachable from other machines
// without credentials of the operator's: the generated ones are for this
// machine's tools, and other machines' publishers need their own.
func checkNATSAuth(c config) error {
	if (c.NATSUser == "") != (c.NATSPassword == "") {
		return errors.New("config: NATS_USER and NATS_PASSWORD go together: set both (a user of the embedded NATS for other machines) or neither")
	}
	if c.NATSURL != "" {
		return nil // no embedded NATS
	}
	host, _, _ := net.SplitHostPort(c.NATSAddr)
	if localcreds.IsLoopback(host) || c.NATSUser != "" {
		return nil
	}
	return fmt.Errorf("config: NATS_ADDR %s is reachable from other machines, and the embedded NATS has no credentials for them: set NATS_USER and NATS_PASSWORD (env only; the user publishers elsewhere log in as), or bind NATS_ADDR to 127.0.0.1", c.NATSAddr)
}

// setOf lists the development-mode secrets that are set.
func setOf(env func(string) string) []string {
	var set []string
	for _, k := range devSecrets {
		if env(k) != "" {
			set = append(set, k)
		}
	}
	return set
}

func plural(names []string, one, many string) string {
	if len(names) == 1 {
		return one
	}
	return many
}

// joinNames writes "A", "A and B" or "A, B and C".
func joinNames(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// loopback returns addr with its host replaced by 127.0.0.1 unless it is a
// loopback host already, and whether it changed. A malformed addr is kept:
// the service's own parser names it.
func loopback(addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, false
	}
	if host == "localhost" {
		return addr, false
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return addr, false
	}
	return net.JoinHostPort("127.0.0.1", port), true
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}
