package ingest

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/ctmpipe/ctmpipe/internal/jsstream"
	"github.com/ctmpipe/ctmpipe/internal/settings"
	"github.com/ctmpipe/ctmpipe/internal/startup"
	"github.com/ctmpipe/ctmpipe/internal/tracing"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

// Config is everything the ingest service is configured with. ParseConfig
// fills it from flags and the environment; cmd/all-in-one may build one
// directly.
type Config struct {
	Addr        string        // INGEST_ADDR: the webhook listener (faces the internet)
	AdminAddr   string        // ADMIN_ADDR: the admin listener (metrics, admin API)
	RedisURL    string        // REDIS_URL: required by cmd/ingest, not by New
	AppSecrets  []string      // META_APP_SECRET, comma-separated
	VerifyToken string        // META_VERIFY_TOKEN
	AdminToken  string        // ADMIN_TOKEN; empty disables the admin API
	ContextTTL  time.Duration // CONTEXT_TTL
	BodyLimit   int64         // BODY_LIMIT in bytes
	// MaxBodyBytesInFlight (MAX_BODY_BYTES_IN_FLIGHT) bounds the memory the
	// buffers of all bodies being read or handled hold (body.go).
	MaxBodyBytesInFlight int64
	MaxConnections       int // MAX_CONNECTIONS on the webhook listener
	// MaxConnectionsPerAddress (MAX_CONNECTIONS_PER_ADDRESS) bounds the
	// webhook listener's connections from one address (conns.go).
	MaxConnectionsPerAddress int
	// FirstByteTimeout (FIRST_BYTE_TIMEOUT): a new connection that sent no
	// byte within it is closed (conns.go).
	FirstByteTimeout time.Duration
	ResponseDeadline time.Duration // RESPONSE_DEADLINE: every answer within it, else 503
	StoreTimeout     time.Duration // STORE_TIMEOUT: bound on one Redis write
	OnPremSecret     string        // ONPREM_SECRET; with OnPremWABAID enables /webhook/onprem
	OnPremWABAID     string        // ONPREM_WABA_ID
	Capture          bool          // CAPTURE=on: copy verified bodies to JetStream
	CaptureMaxAge    time.Duration // CAPTURE_MAX_AGE of the WEBHOOKS stream
	CaptureQueue     int           // CAPTURE_QUEUE: bodies waiting to be published
	NATSURL          string        // NATS_URL
	LogLevel         zapcore.Level // LOG_LEVEL
	ShutdownTimeout  time.Duration // SHUTDOWN_TIMEOUT for in-flight requests
	PprofAddr        string        // PPROF_ADDR: /debug/pprof listener; empty: off
	StreamReplicas   int           // STREAM_REPLICAS of WEBHOOKS and FORWARD (also in Forward); 0: 1

	// GraphVersion (GRAPH_API_VERSION) is only judged at start here (the
	// registry API's Dataset API calls, wired by internal/services, use it).
	GraphVersion string
	// Tracing (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME): traces off when unset.
	Tracing tracing.Config

	// Replicas: REDIS_MIN_REPLICAS and REDIS_REPLICA_TIMEOUT. The store
	// write before a 200 waits for them (internal/replicas), and /readyz
	// answers 503 while fewer are connected.
	Replicas replicas.Config
}

// Defaults for settings the operator leaves unset.
const (
	DefaultAddr      = ":8080"
	DefaultAdminAddr = "127.0.0.1:8081"
	// DefaultBodyLimit is 3 MiB: "Webhooks payloads can be up to 3MB"
	// (WhatsApp Cloud API, "Webhooks",
	// https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks).
	DefaultBodyLimit            = 3 << 20
	DefaultMaxBodyBytesInFlight = 64 << 20
	DefaultMaxConnections       = 4096
	// DefaultMaxConnectionsPerAddress leaves Meta's deliveries (a few
	// connections per sending host) far below it while 16 addresses cannot
	// take every slot. Behind a proxy every connection is the proxy's:
	// raise it to MAX_CONNECTIONS there.
	DefaultMaxConnectionsPerAddress = 256
	// DefaultFirstByteTimeout: a client that connects has its request ready;
	// 2 s leave room for a slow network and keep idle connections from
	// holding slots past Meta's 5 s.
	DefaultFirstByteTimeout = 2 * time.Second
	// DefaultResponseDeadline leaves a second of margin under Messenger's
	// "within 5 or less seconds" for the 200 (Messenger Platform, "Webhooks",
	// https://developers.facebook.com/docs/messenger-platform/webhooks),
	// after which Meta retries, and unsubscribes an app whose endpoint keeps
	// failing.
	DefaultResponseDeadline = 4 * time.Second
	DefaultStoreTimeout     = 3 * time.Second
	DefaultCaptureMaxAge    = 72 * time.Hour
	DefaultCaptureQueue     = 4096
	DefaultShutdownTimeout  = 15 * time.Second
	// MinOnPremSecretLen keeps guessable secrets off the internet-facing
	// listener: a 2-character one fell in 610 tries.
	MinOnPremSecretLen = 16
)

// Settings lists the webhook receiver's knobs, in the order --help prints
// them. The ingest binary adds those of the admin listener's services
// (internal/services.IngestSettings); all-in-one adds the sender's too.
func Settings() []settings.Setting { return ownSettings() }

// GraphVersionSetting is GRAPH_API_VERSION, with the sender's name and
// default, so that all-in-one merges them.
func GraphVersionSetting() settings.Setting {
	return settings.Setting{Env: "GRAPH_API_VERSION", Flag: "graph-api-version", Default: capi.DefaultVersion, Help: "Marketing API version of the Conversions API calls (vNN.0; default the newest this build knows). Logged at start: WARN within 90 days of its expiry, ERROR once expired (Meta then refuses it with code 2635: every business pauses, nothing is dead-lettered). Meta's dates: ctm versions"}
}

func ownSettings() []settings.Setting {
	return append([]settings.Setting{
		{Env: "INGEST_ADDR", Flag: "addr", Default: DefaultAddr, Help: "address of the webhook listener, the one Meta reaches: /webhook, /webhook/onprem, /healthz, /readyz only (host:port; port 0 picks a free one)"},
		{Env: "ADMIN_ADDR", Flag: "admin-addr", Default: DefaultAdminAddr, Help: "address of the admin listener: /metrics and the admin API (/v1/...); keep it off the internet"},
		{Env: "REDIS_URL", Flag: "redis-url", Help: "Redis URL: redis://host:6379/0, rediss://, unix://, redis+cluster://h1,h2, redis+sentinel://master@h1,h2/0 (required; prefer the env var when it holds a password)"},
		{Env: "META_APP_SECRET", Help: "app secret(s) that sign webhooks, comma-separated for several apps or rotation (required, env only)"},
		{Env: "META_VERIFY_TOKEN", Help: "token Meta echoes in the GET /webhook handshake (required, env only)"},
		{Env: "ADMIN_TOKEN", Help: "bearer token of the admin listener's API (/v1/...) and /metrics; unset disables the admin API (its routes answer 404) and leaves /metrics open (env only)"},
		{Env: "CONTEXT_TTL", Flag: "context-ttl", Default: "7d", Help: "how long a context lives after its last click (Go duration or days, e.g. 7d, 36h)"},
		{Env: "BODY_LIMIT", Flag: "body-limit", Default: "3MiB", Help: "largest webhook body accepted (Meta's payloads reach 3 MB); bigger ones get 413 (bytes, or with KiB/MiB)"},
		{Env: "MAX_BODY_BYTES_IN_FLIGHT", Flag: "max-body-bytes-in-flight", Default: "64MiB", Help: "memory all request bodies being read or handled may hold together (buffers grow as bytes arrive); past it requests get 503; at least 2 × BODY_LIMIT"},
		{Env: "MAX_CONNECTIONS", Flag: "max-connections", Default: strconv.Itoa(DefaultMaxConnections), Help: "connections the webhook listener holds open at once; further ones wait to be accepted"},
		{Env: "MAX_CONNECTIONS_PER_ADDRESS", Flag: "max-connections-per-address", Default: strconv.Itoa(DefaultMaxConnectionsPerAddress), Help: "connections one client address (an IPv6 one by its /64) may hold on the webhook listener; further ones are closed as accepted (behind a proxy, raise it to MAX_CONNECTIONS)"},
		{Env: "FIRST_BYTE_TIMEOUT", Flag: "first-byte-timeout", Default: DefaultFirstByteTimeout.String(), Help: "a new webhook-listener connection that sends no byte of a request within it is closed, so idle connections do not hold the slots Meta's deliveries need"},
		{Env: "RESPONSE_DEADLINE", Flag: "response-deadline", Default: DefaultResponseDeadline.String(), Help: "every webhook answer within this time (body, queueing and store write included), else 503 and Meta retries; Messenger wants its 200 within 5s"},
		{Env: "STORE_TIMEOUT", Flag: "store-timeout", Default: DefaultStoreTimeout.String(), Help: "bound on one Redis write; past it the webhook gets 503 and Meta retries"},
		{Env: "ONPREM_SECRET", Help: "shared secret for POST /webhook/onprem (X-Onprem-Secret header or basic-auth password), at least 16 characters; 10 wrong ones from an address within a minute block it until the minute ends (429) (env only)"},
		{Env: "ONPREM_WABA_ID", Flag: "onprem-waba-id", Help: "WABA id the WhatsApp On-Premises client serves; with ONPREM_SECRET enables /webhook/onprem"},
		{Env: "CAPTURE", Flag: "capture", Default: "off", Bool: true, Help: "on: copy each verified body (message text and names redacted) to JetStream stream WEBHOOKS"},
		{Env: "CAPTURE_MAX_AGE", Flag: "capture-max-age", Default: "72h", Help: "how long the WEBHOOKS stream keeps captured bodies (Go duration or days)"},
		{Env: "CAPTURE_QUEUE", Flag: "capture-queue", Default: strconv.Itoa(DefaultCaptureQueue), Help: "captured bodies waiting to be published; when full, new ones are dropped"},
		{Env: "NATS_URL", Flag: "nats-url", Help: "NATS server URL (required when CAPTURE=on, INTAKE_TOKEN, FORWARD_URLS or AUTOMATIC_EVENTS=on is set)"},
		{Env: "LOG_LEVEL", Flag: "log-level", Default: "info", Help: "debug, info, warn or error"},
		{Env: "SHUTDOWN_TIMEOUT", Flag: "shutdown-timeout", Default: DefaultShutdownTimeout.String(), Help: "how long in-flight requests may take to finish after SIGTERM"},
		{Env: "PPROF_ADDR", Flag: "pprof-addr", Help: "address for Go's /debug/pprof profiling endpoints, on a listener of their own; unset: off (bind to localhost: profiles reveal internals)"},
		GraphVersionSetting(),
		jsstream.Setting(),
	}, append(startup.ReplicaSettings(), tracing.Settings()...)...)
}

// ParseConfig reads the configuration from args (flags) and getenv. Each
// flag's default is its environment variable, so flags win. Secrets are read
// from the environment only. It returns an error wrapping flag.ErrHelp for
// -h/--help (print PrintUsage then), and an error naming the setting for a
// missing or malformed one, never its value.
func ParseConfig(args []string, getenv func(string) string) (Config, error) {
	v, err := settings.Parse("ingest", args, getenv, Settings())
	if err != nil {
		return Config{}, err
	}
	return ConfigFrom(v)
}

// ConfigFrom reads the receiver's settings from v (parsed with Settings(),
// or a list that holds them) and validates them.
func ConfigFrom(v *settings.Values) (Config, error) {
	var err error
	cfg := Config{
		Addr:                     v.Text("INGEST_ADDR"),
		AdminAddr:                v.Text("ADMIN_ADDR"),
		RedisURL:                 v.Text("REDIS_URL"),
		AppSecrets:               splitSecrets(v.Text("META_APP_SECRET")),
		VerifyToken:              v.Text("META_VERIFY_TOKEN"),
		AdminToken:               v.Text("ADMIN_TOKEN"),
		ContextTTL:               v.Duration("CONTEXT_TTL"),
		BodyLimit:                v.Size("BODY_LIMIT"),
		MaxBodyBytesInFlight:     v.Size("MAX_BODY_BYTES_IN_FLIGHT"),
		MaxConnections:           v.Int("MAX_CONNECTIONS"),
		MaxConnectionsPerAddress: v.Int("MAX_CONNECTIONS_PER_ADDRESS"),
		FirstByteTimeout:         v.Duration("FIRST_BYTE_TIMEOUT"),
		ResponseDeadline:         v.Duration("RESPONSE_DEADLINE"),
		StoreTimeout:             v.Duration("STORE_TIMEOUT"),
		OnPremSecret:             v.Text("ONPREM_SECRET"),
		OnPremWABAID:             v.Text("ONPREM_WABA_ID"),
		Tracing:                  tracing.FromValues(v),
		Capture:                  v.Bool("CAPTURE"),
		CaptureMaxAge:            v.Duration("CAPTURE_MAX_AGE"),
		CaptureQueue:             int(v.Size("CAPTURE_QUEUE")),
		NATSURL:                  v.Text("NATS_URL"),
		LogLevel:                 v.Level("LOG_LEVEL"),
		ShutdownTimeout:          v.Duration("SHUTDOWN_TIMEOUT"),
		PprofAddr:                v.Text("PPROF_ADDR"),
		GraphVersion:             v.Text("GRAPH_API_VERSION"),
	}
	if err := v.Err(); err != nil {
		return Config{}, err
	}
	if cfg.Replicas, err = startup.ReplicasFrom(v); err != nil {
		return Config{}, err
	}
	if cfg.StreamReplicas, err = jsstream.Replicas(v); err != nil {
		return Config{}, err
	}
	if _, err := capi.ParseVersion(cfg.GraphVersion); err != nil {
		return Config{}, fmt.Errorf("config: GRAPH_API_VERSION: %w", err)
	}
	return cfg, cfg.Validate()
}

// Validate reports the first required setting that is missing or
// inconsistent, by name. New calls it too.
func (c Config) Validate() error {
	secrets := ""
	if len(c.AppSecrets) > 0 {
		secrets = "set"
	}
	if err := settings.Required(
		settings.Need{Env: "META_APP_SECRET", Value: secrets, Text: "META_APP_SECRET is required (the app secret that signs Meta's webhooks)"},
		settings.Need{Env: "META_VERIFY_TOKEN", Value: c.VerifyToken, Text: "META_VERIFY_TOKEN is required (the token of the GET /webhook handshake)"},
	); err != nil {
		return err
	}
	switch {
	case (c.OnPremSecret == "") != (c.OnPremWABAID == ""):
		return errors.New("config: ONPREM_SECRET and ONPREM_WABA_ID must be set together (or neither, to disable /webhook/onprem)")
	case c.OnPremSecret != "" && len(c.OnPremSecret) < MinOnPremSecretLen:
		return errors.New("config: ONPREM_SECRET must be at least 16 characters (it guards /webhook/onprem on the internet-facing listener)")
	case c.Capture && c.NATSURL == "":
		return errors.New("config: CAPTURE=on needs NATS_URL")
	case c.Replicas.Min > 0 && c.StoreTimeout > 0 && c.Replicas.Timeout >= c.StoreTimeout:
		return errors.New("config: REDIS_REPLICA_TIMEOUT must be shorter than STORE_TIMEOUT (the write and its wait for replicas share it)")
	case c.BodyLimit <= 0:
		return errors.New("config: BODY_LIMIT must be positive")
	case c.MaxBodyBytesInFlight < 2*c.BodyLimit:
		return errors.New("config: MAX_BODY_BYTES_IN_FLIGHT must be at least 2 × BODY_LIMIT (a body's buffer doubles as it grows)")
	case c.MaxConnections <= 0:
		return errors.New("config: MAX_CONNECTIONS must be positive")
	case c.MaxConnectionsPerAddress <= 0:
		return errors.New("config: MAX_CONNECTIONS_PER_ADDRESS must be positive (behind a proxy, set it to MAX_CONNECTIONS)")
	case c.FirstByteTimeout <= 0:
		return errors.New("config: FIRST_BYTE_TIMEOUT must be positive")
	case c.ResponseDeadline <= 0:
		return errors.New("config: RESPONSE_DEADLINE must be positive")
	case c.CaptureQueue <= 0:
		return errors.New("config: CAPTURE_QUEUE must be positive")
	}
	return nil
}

// NeedsNATS reports whether the receiver publishes to JetStream itself
// (CAPTURE=on); the services beside it say their own.
func (c Config) NeedsNATS() bool { return c.Capture }

// setDefaults fills zero values of a Config built by hand.
func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.ContextTTL <= 0 {
		c.ContextTTL = attribution.DefaultTTL
	}
	if c.AdminAddr == "" {
		c.AdminAddr = DefaultAdminAddr
	}
	if c.BodyLimit <= 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.MaxBodyBytesInFlight <= 0 {
		c.MaxBodyBytesInFlight = max(DefaultMaxBodyBytesInFlight, 2*c.BodyLimit)
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxConnectionsPerAddress <= 0 {
		c.MaxConnectionsPerAddress = DefaultMaxConnectionsPerAddress
	}
	if c.FirstByteTimeout <= 0 {
		c.FirstByteTimeout = DefaultFirstByteTimeout
	}
	if c.ResponseDeadline <= 0 {
		c.ResponseDeadline = DefaultResponseDeadline
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
	settings.PrintUsage(w, Settings())
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

// ParseDuration parses a Go duration, also accepting a leading day count
// ("7d", "1d12h"); see settings.ParseDuration.
func ParseDuration(s string) (time.Duration, error) { return settings.ParseDuration(s) }
