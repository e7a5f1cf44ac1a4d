package ingest

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"go.uber.org/zap/zapcore"
)

// Config is everything the ingest service is configured with. ParseConfig
// fills it from flags and the environment; cmd/all-in-one may build one
// directly.
type Config struct {
	Addr            string        // INGEST_ADDR: listen address
	RedisURL        string        // REDIS_URL: required by cmd/ingest, not by New
	AppSecrets      []string      // META_APP_SECRET, comma-separated
	VerifyToken     string        // META_VERIFY_TOKEN
	AdminToken      string        // ADMIN_TOKEN; empty disables /v1/contexts
	ContextTTL      time.Duration // CONTEXT_TTL
	BodyLimit       int64         // BODY_LIMIT in bytes
	StoreTimeout    time.Duration // STORE_TIMEOUT: bound on one Redis write
	OnPremSecret    string        // ONPREM_SECRET; with OnPremWABAID enables /webhook/onprem
	OnPremWABAID    string        // ONPREM_WABA_ID
	Capture         bool          // CAPTURE=on: copy verified bodies to JetStream
	CaptureMaxAge   time.Duration // CAPTURE_MAX_AGE of the WEBHOOKS stream
	CaptureQueue    int           // CAPTURE_QUEUE: bodies waiting to be published
	NATSURL         string        // NATS_URL
	LogLevel        zapcore.Level // LOG_LEVEL
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT for in-flight requests
}

// Defaults for settings the operator leaves unset.
const (
	DefaultAddr            = ":8080"
	DefaultBodyLimit       = 1 << 20
	DefaultStoreTimeout    = 3 * time.Second
	DefaultCaptureMaxAge   = 72 * time.Hour
	DefaultCaptureQueue    = 4096
	DefaultShutdownTimeout = 15 * time.Second
)

// setting describes one configuration knob: its environment variable, its
// flag (none for secrets, which flags would show in ps), default and meaning.
type setting struct {
	env, flag, def, help string
	boolean              bool
}

// settings lists every knob, in the order --help prints them.
func settings() []setting {
	return []setting{
		{env: "INGEST_ADDR", flag: "addr", def: DefaultAddr, help: "address to listen on (host:port; port 0 picks a free one)"},
		{env: "REDIS_URL", flag: "redis-url", help: "Redis URL, e.g. redis://host:6379/0 (required; prefer the env var when it holds a password)"},
		{env: "META_APP_SECRET", help: "app secret(s) that sign webhooks, comma-separated for several apps or rotation (required, env only)"},
		{env: "META_VERIFY_TOKEN", help: "token Meta echoes in the GET /webhook handshake (required, env only)"},
		{env: "ADMIN_TOKEN", help: "bearer token for GET /v1/contexts/...; unset disables that API (env only)"},
		{env: "CONTEXT_TTL", flag: "context-ttl", def: "7d", help: "how long a context lives after its last click (Go duration or days, e.g. 7d, 36h)"},
		{env: "BODY_LIMIT", flag: "body-limit", def: "1MiB", help: "largest webhook body accepted; bigger ones get 413 (bytes, or with KiB/MiB)"},
		{env: "STORE_TIMEOUT", flag: "store-timeout", def: DefaultStoreTimeout.String(), help: "bound on one Redis write; past it the webhook gets 503 and Meta retries"},
		{env: "ONPREM_SECRET", help: "shared secret for POST /webhook/onprem (X-Onprem-Secret header or basic-auth password; env only)"},
		{env: "ONPREM_WABA_ID", flag: "onprem-waba-id", help: "WABA id the WhatsApp On-Premises client serves; with ONPREM_SECRET enables /webhook/onprem"},
		{env: "CAPTURE", flag: "capture", def: "off", boolean: true, help: "on: copy each verified body (message text and names redacted) to JetStream stream WEBHOOKS"},
		{env: "CAPTURE_MAX_AGE", flag: "capture-max-age", def: "72h", help: "how long the WEBHOOKS stream keeps captured bodies (Go duration or days)"},
		{env: "CAPTURE_QUEUE", flag: "capture-queue", def: strconv.Itoa(DefaultCaptureQueue), help: "captured bodies waiting to be published; when full, new ones are dropped"},
		{env: "NATS_URL", flag: "nats-url", help: "NATS server URL (required when CAPTURE=on)"},
		{env: "LOG_LEVEL", flag: "log-level", def: "info", help: "debug, info, warn or error"},
		{env: "SHUTDOWN_TIMEOUT", flag: "shutdown-timeout", def: DefaultShutdownTimeout.String(), help: "how long in-flight requests may take to finish after SIGTERM"},
	}
}

// textFlag is a string flag; boolean ones may be given bare (-capture).
type textFlag struct {
	v       string
	boolean bool
}

func (f *textFlag) String() string     { return f.v }
func (f *textFlag) Set(s string) error { f.v = s; return nil }
func (f *textFlag) IsBoolFlag() bool   { return f.boolean }

// ParseConfig reads the configuration from args (flags) and getenv. Each
// flag's default is its environment variable, so flags win. Secrets are read
// from the environment only. It returns an error wrapping flag.ErrHelp for
// -h/--help (print PrintUsage then), and an error naming the setting for a
// missing or malformed one, never its value.
func ParseConfig(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vals := map[string]*textFlag{}
	for _, s := range settings() {
		v := getenv(s.env)
		if v == "" {
			v = s.def
		}
		f := &textFlag{v: v, boolean: s.boolean}
		vals[s.env] = f
		if s.flag != "" {
			fs.Var(f, s.flag, s.help)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, flag.ErrHelp
		}
		return Config{}, fmt.Errorf("config: %w (see --help)", err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("config: unexpected argument %q (see --help)", fs.Arg(0))
	}
	p := &parser{vals: vals}
	cfg := Config{
		Addr:            p.str("INGEST_ADDR"),
		RedisURL:        p.str("REDIS_URL"),
		AppSecrets:      splitSecrets(p.str("META_APP_SECRET")),
		VerifyToken:     p.str("META_VERIFY_TOKEN"),
		AdminToken:      p.str("ADMIN_TOKEN"),
		ContextTTL:      p.duration("CONTEXT_TTL"),
		BodyLimit:       p.size("BODY_LIMIT"),
		StoreTimeout:    p.duration("STORE_TIMEOUT"),
		OnPremSecret:    p.str("ONPREM_SECRET"),
		OnPremWABAID:    p.str("ONPREM_WABA_ID"),
		Capture:         p.boolean("CAPTURE"),
		CaptureMaxAge:   p.duration("CAPTURE_MAX_AGE"),
		CaptureQueue:    int(p.size("CAPTURE_QUEUE")),
		NATSURL:         p.str("NATS_URL"),
		LogLevel:        p.level("LOG_LEVEL"),
		ShutdownTimeout: p.duration("SHUTDOWN_TIMEOUT"),
	}
	if p.err != nil {
		return Config{}, p.err
	}
	return cfg, cfg.Validate()
}

// Validate reports the first required setting that is missing or
// inconsistent, by name. New calls it too.
func (c Config) Validate() error {
	switch {
	case len(c.AppSecrets) == 0:
		return errors.New("config: META_APP_SECRET is required (the app secret that signs Meta's webhooks)")
	case c.VerifyToken == "":
		return errors.New("config: META_VERIFY_TOKEN is required (the token of the GET /webhook handshake)")
	case (c.OnPremSecret == "") != (c.OnPremWABAID == ""):
		return errors.New("config: ONPREM_SECRET and ONPREM_WABA_ID must be set together (or neither, to disable /webhook/onprem)")
	case c.Capture && c.NATSURL == "":
		return errors.New("config: CAPTURE=on needs NATS_URL")
	case c.BodyLimit <= 0:
		return errors.New("config: BODY_LIMIT must be positive")
	case c.CaptureQueue <= 0:
		return errors.New("config: CAPTURE_QUEUE must be positive")
	}
	return nil
}

// setDefaults fills zero values of a Config built by hand.
func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.ContextTTL <= 0 {
		c.ContextTTL = attribution.DefaultTTL
	}
	if c.BodyLimit <= 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = DefaultStoreTimeout
	}
	if c.CaptureMaxAge <= 0 {
		c.CaptureMaxAge = DefaultCaptureMaxAge
	}
	if c.CaptureQueue <= 0 {
		c.CaptureQueue = DefaultCaptureQueue
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
}

// PrintUsage writes the --help text: every setting with its flag,
// environment variable and default.
func PrintUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: ingest [flags]

Receives Meta webhooks (Messenger, Instagram, WhatsApp Cloud and On-Premises),
verifies them and stores the ad-click context of each conversation in Redis.

Every setting is an environment variable; most also have a flag, which wins.
Secrets are read from the environment only, so that they never show in ps.

`)
	for _, s := range settings() {
		name := "(env only)"
		if s.flag != "" {
			name = "-" + s.flag
		}
		def := ""
		if s.def != "" {
			def = fmt.Sprintf(" (default %s)", s.def)
		}
		line := strings.TrimRight(fmt.Sprintf("  %-18s %-20s%s", s.env, name, def), " ")
		fmt.Fprintf(w, "%s\n      %s\n", line, s.help)
	}
}

// splitSecrets splits a comma-separated list, dropping empty entries.
func splitSecrets(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parser converts setting values, keeping the first error.
type parser struct {
	vals map[string]*textFlag
	err  error
}

func (p *parser) str(env string) string { return strings.TrimSpace(p.vals[env].v) }

func (p *parser) fail(env, what string) {
	if p.err == nil {
		p.err = fmt.Errorf("config: %s: %s", env, what)
	}
}

func (p *parser) duration(env string) time.Duration {
	d, err := ParseDuration(p.str(env))
	if err != nil || d <= 0 {
		p.fail(env, "want a positive duration such as 7d, 36h or 90s")
	}
	return d
}

func (p *parser) size(env string) int64 {
	n, err := parseSize(p.str(env))
	if err != nil || n <= 0 {
		p.fail(env, "want a positive size such as 1048576, 512KiB or 1MiB")
	}
	return n
}

func (p *parser) boolean(env string) bool {
	switch strings.ToLower(p.str(env)) {
	case "on", "true", "1", "yes":
		return true
	case "off", "false", "0", "no", "":
		return false
	}
	p.fail(env, "want on or off")
	return false
}

func (p *parser) level(env string) zapcore.Level {
	l, err := zapcore.ParseLevel(p.str(env))
	if err != nil {
		p.fail(env, "want debug, info, warn or error")
	}
	return l
}

// ParseDuration parses a Go duration, also accepting a leading day count
// ("7d", "1d12h"), since retention windows are naturally said in days.
func ParseDuration(s string) (time.Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseUint(days, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("bad day count in duration %q", s)
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, err
		}
		d += r
	}
	return d, nil
}

// parseSize parses a byte count with an optional KiB/MiB (or K/M, KB/MB,
// read as binary units) suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	upper := strings.ToUpper(s)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"K", 1 << 10}, {"M", 1 << 20}, {"B", 1}} {
		if strings.HasSuffix(upper, u.suffix) {
			mult = u.mult
			s = strings.TrimSpace(s[:len(s)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	return n * mult, nil
}
