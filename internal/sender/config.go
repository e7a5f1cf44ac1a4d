package sender

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/ledger"
)

// Config is everything the sender is configured with. ParseConfig fills it
// from flags and the environment; cmd/all-in-one may start from
// DefaultConfig and set fields.
type Config struct {
	NATSURL         string                   // NATS_URL: required by cmd/sender, not by New
	RedisURL        string                   // REDIS_URL: required by cmd/sender, not by New
	AccessToken     string                   // CAPI_ACCESS_TOKEN (env only)
	DatasetsFile    string                   // CAPI_DATASETS_FILE
	Datasets        map[string]DatasetConfig // read from DatasetsFile, tokens resolved
	PartnerAgent    string                   // CAPI_PARTNER_AGENT
	TestEventCode   string                   // CAPI_TEST_EVENT_CODE
	GraphBase       string                   // GRAPH_API_BASE
	GraphVersion    string                   // GRAPH_API_VERSION
	AppSecret       string                   // META_APP_SECRET (env only): appsecret_proof
	DryRunFile      string                   // CAPI_DRYRUN_FILE: append requests there instead of posting
	ContextWait     time.Duration            // CONTEXT_WAIT
	ContextRetryMin time.Duration            // CONTEXT_RETRY_MIN: first wait for a missing context
	ContextRetryMax time.Duration            // CONTEXT_RETRY_MAX
	RequireReferral bool                     // REQUIRE_REFERRAL (Messenger, Instagram)
	BatchSize       int                      // BATCH_SIZE: messages per fetch
	Workers         int                      // WORKERS: concurrent fetch loops
	MaxAckPending   int                      // MAX_ACK_PENDING of the consumer it creates
	AckWait         time.Duration            // ACK_WAIT of the consumer it creates
	SendLease       time.Duration            // SEND_LEASE: ledger claim lease, > HTTPTimeout
	SentTTL         time.Duration            // SENT_TTL: how long sent markers are kept
	HTTPTimeout     time.Duration            // HTTP_TIMEOUT of one Graph API request
	RetryMin        time.Duration            // RETRY_MIN: first backoff after a Graph error
	RetryMax        time.Duration            // RETRY_MAX: longest backoff
	PauseInterval   time.Duration            // PAUSE_INTERVAL after a token error
	MetricsAddr     string                   // METRICS_ADDR
	LogLevel        zapcore.Level            // LOG_LEVEL
	ShutdownTimeout time.Duration            // SHUTDOWN_TIMEOUT for the in-flight batch
	Failpoint       string                   // CTM_FAILPOINT (env only, tests only)
}

// DatasetConfig is one business's entry of CAPI_DATASETS_FILE with its token
// already read from the environment variable the file names.
type DatasetConfig struct {
	DatasetID string // empty: resolve with the Dataset API using Token
	TokenEnv  string // the environment variable Token came from
	Token     string
}

// Defaults of the settings the operator leaves unset.
const (
	DefaultContextWait     = 10 * time.Minute
	DefaultContextRetryMin = 5 * time.Second
	DefaultContextRetryMax = time.Minute
	DefaultBatchSize       = 1000
	DefaultWorkers         = 2
	DefaultMaxAckPending   = 50000
	DefaultAckWait         = 30 * time.Second
	DefaultSendLease       = 2 * time.Minute
	DefaultRetryMin        = 2 * time.Second
	DefaultRetryMax        = 5 * time.Minute
	DefaultPauseInterval   = 5 * time.Minute
	DefaultMetricsAddr     = ":9090"
	DefaultShutdownTimeout = 20 * time.Second
)

// DefaultConfig returns a Config with every default filled in and nothing
// required set.
func DefaultConfig() Config {
	return Config{
		GraphBase:       capi.DefaultBaseURL,
		GraphVersion:    capi.DefaultVersion,
		ContextWait:     DefaultContextWait,
		ContextRetryMin: DefaultContextRetryMin,
		ContextRetryMax: DefaultContextRetryMax,
		RequireReferral: true,
		BatchSize:       DefaultBatchSize,
		Workers:         DefaultWorkers,
		MaxAckPending:   DefaultMaxAckPending,
		AckWait:         DefaultAckWait,
		SendLease:       DefaultSendLease,
		SentTTL:         ledger.DefaultSentTTL,
		HTTPTimeout:     capi.DefaultTimeout,
		RetryMin:        DefaultRetryMin,
		RetryMax:        DefaultRetryMax,
		PauseInterval:   DefaultPauseInterval,
		MetricsAddr:     DefaultMetricsAddr,
		LogLevel:        zapcore.InfoLevel,
		ShutdownTimeout: DefaultShutdownTimeout,
	}
}

// setting is one knob: environment variable, flag (none for secrets, which
// flags would show in ps), default and meaning.
type setting struct {
	env, flag, def, help string
}

func dur(d time.Duration) string { return fmtDuration(d) }

// settings lists every knob in the order --help prints them.
func settings() []setting {
	d := DefaultConfig()
	return []setting{
		{"NATS_URL", "nats-url", "", "NATS server URL (required)"},
		{"REDIS_URL", "redis-url", "", "Redis URL: redis://, rediss://, unix://, redis+cluster://, redis+sentinel:// (required)"},
		{"CAPI_ACCESS_TOKEN", "", "", "default Conversions API access token (env only; required unless CAPI_DATASETS_FILE gives tokens or CAPI_DRYRUN_FILE is set)"},
		{"CAPI_DATASETS_FILE", "datasets-file", "", `JSON {"<business_id>": {"dataset_id": "...", "access_token_env": "ENV_VAR"}}; businesses not listed use the Dataset API`},
		{"CAPI_PARTNER_AGENT", "partner-agent", "", "partner_agent sent with every request"},
		{"CAPI_TEST_EVENT_CODE", "test-event-code", "", "test_event_code sent with every request (Events Manager test tab)"},
		{"CAPI_DRYRUN_FILE", "dry-run-file", "", "append the requests to this JSONL file instead of posting them (no token needed)"},
		{"GRAPH_API_BASE", "graph-api-base", d.GraphBase, "Graph API base URL"},
		{"GRAPH_API_VERSION", "graph-api-version", d.GraphVersion, "Graph API version"},
		{"META_APP_SECRET", "", "", "app secret for appsecret_proof (env only; optional)"},
		{"CONTEXT_WAIT", "context-wait", dur(d.ContextWait), "how long a conversion waits for its ad-click context before dead letter unattributed"},
		{"CONTEXT_RETRY_MIN", "context-retry-min", dur(d.ContextRetryMin), "first delay before looking for a missing context again (doubles each time)"},
		{"CONTEXT_RETRY_MAX", "context-retry-max", dur(d.ContextRetryMax), "longest delay between context lookups"},
		{"REQUIRE_REFERRAL", "require-referral", "true", "Messenger/Instagram: require a stored ad referral (false: send with page/IG ids alone)"},
		{"BATCH_SIZE", "batch-size", strconv.Itoa(d.BatchSize), "messages fetched and processed together (1-10000)"},
		{"WORKERS", "workers", strconv.Itoa(d.Workers), "concurrent fetch-process loops"},
		{"MAX_ACK_PENDING", "max-ack-pending", strconv.Itoa(d.MaxAckPending), "MaxAckPending of the consumer when the sender creates it; waiting and paused messages count against it"},
		{"ACK_WAIT", "ack-wait", dur(d.AckWait), "AckWait of the consumer when the sender creates it: an unacked message comes again after it"},
		{"SEND_LEASE", "send-lease", dur(d.SendLease), "how long a claim on an event protects a send in flight; must exceed HTTP_TIMEOUT"},
		{"SENT_TTL", "sent-ttl", dur(d.SentTTL), "how long sent event ids are remembered (at least 7d: Meta's window)"},
		{"HTTP_TIMEOUT", "http-timeout", dur(d.HTTPTimeout), "timeout of one Graph API request"},
		{"RETRY_MIN", "retry-min", dur(d.RetryMin), "first backoff after a transient or throttling Graph error"},
		{"RETRY_MAX", "retry-max", dur(d.RetryMax), "longest backoff"},
		{"PAUSE_INTERVAL", "pause-interval", dur(d.PauseInterval), "how long a business is paused after a token error before it is tried again"},
		{"METRICS_ADDR", "metrics-addr", d.MetricsAddr, "address for /metrics, /healthz and /readyz (-metrics-addr= turns them off)"},
		{"LOG_LEVEL", "log-level", "info", "debug, info, warn or error"},
		{"SHUTDOWN_TIMEOUT", "shutdown-timeout", dur(d.ShutdownTimeout), "how long the in-flight batch may take to finish after SIGTERM"},
	}
}

type textFlag struct{ v string }

func (f *textFlag) String() string     { return f.v }
func (f *textFlag) Set(s string) error { f.v = s; return nil }

// ParseConfig reads the configuration from args (flags) and getenv; each
// flag's default is its environment variable, so flags win. It returns
// flag.ErrHelp for -h/--help (print PrintUsage then) and an error naming a
// missing or malformed setting, never its value. It reads CAPI_DATASETS_FILE.
func ParseConfig(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("sender", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vals := map[string]*textFlag{}
	for _, s := range settings() {
		v := getenv(s.env)
		if v == "" {
			v = s.def
		}
		f := &textFlag{v: v}
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
		NATSURL:         p.str("NATS_URL"),
		RedisURL:        p.str("REDIS_URL"),
		AccessToken:     p.str("CAPI_ACCESS_TOKEN"),
		DatasetsFile:    p.str("CAPI_DATASETS_FILE"),
		PartnerAgent:    p.str("CAPI_PARTNER_AGENT"),
		TestEventCode:   p.str("CAPI_TEST_EVENT_CODE"),
		DryRunFile:      p.str("CAPI_DRYRUN_FILE"),
		GraphBase:       strings.TrimRight(p.str("GRAPH_API_BASE"), "/"),
		GraphVersion:    p.str("GRAPH_API_VERSION"),
		AppSecret:       p.str("META_APP_SECRET"),
		ContextWait:     p.duration("CONTEXT_WAIT"),
		ContextRetryMin: p.duration("CONTEXT_RETRY_MIN"),
		ContextRetryMax: p.duration("CONTEXT_RETRY_MAX"),
		RequireReferral: p.boolean("REQUIRE_REFERRAL"),
		BatchSize:       p.integer("BATCH_SIZE"),
		Workers:         p.integer("WORKERS"),
		MaxAckPending:   p.integer("MAX_ACK_PENDING"),
		AckWait:         p.duration("ACK_WAIT"),
		SendLease:       p.duration("SEND_LEASE"),
		SentTTL:         p.duration("SENT_TTL"),
		HTTPTimeout:     p.duration("HTTP_TIMEOUT"),
		RetryMin:        p.duration("RETRY_MIN"),
		RetryMax:        p.duration("RETRY_MAX"),
		PauseInterval:   p.duration("PAUSE_INTERVAL"),
		MetricsAddr:     p.str("METRICS_ADDR"),
		LogLevel:        p.level("LOG_LEVEL"),
		ShutdownTimeout: p.duration("SHUTDOWN_TIMEOUT"),
		Failpoint:       getenv("CTM_FAILPOINT"),
	}
	if p.err != nil {
		return Config{}, p.err
	}
	switch {
	case cfg.NATSURL == "":
		return Config{}, errors.New("config: NATS_URL is required")
	case cfg.RedisURL == "":
		return Config{}, errors.New("config: REDIS_URL is required")
	}
	if cfg.DatasetsFile != "" {
		ds, err := readDatasets(cfg.DatasetsFile, getenv)
		if err != nil {
			return Config{}, err
		}
		cfg.Datasets = ds
		for id, e := range ds {
			if e.Token == "" && cfg.DryRunFile == "" {
				return Config{}, fmt.Errorf("config: CAPI_DATASETS_FILE: business %s: %s is not set", id, e.TokenEnv)
			}
		}
	}
	if cfg.AccessToken == "" && len(cfg.Datasets) == 0 && cfg.DryRunFile == "" {
		return Config{}, errors.New("config: CAPI_ACCESS_TOKEN is required (or CAPI_DATASETS_FILE with tokens, or CAPI_DRYRUN_FILE for a dry run)")
	}
	return cfg, cfg.Validate()
}

// Validate reports the first inconsistent setting by name. New calls it.
func (c Config) Validate() error {
	switch {
	case c.BatchSize < 1 || c.BatchSize > 10000:
		return errors.New("config: BATCH_SIZE must be between 1 and 10000")
	case c.Workers < 1 || c.Workers > 64:
		return errors.New("config: WORKERS must be between 1 and 64")
	case c.MaxAckPending < c.BatchSize*c.Workers:
		return errors.New("config: MAX_ACK_PENDING must be at least BATCH_SIZE × WORKERS")
	case c.HTTPTimeout <= 0 || c.SendLease <= c.HTTPTimeout:
		return errors.New("config: SEND_LEASE must exceed HTTP_TIMEOUT (a claim must outlive the request it protects)")
	case c.SentTTL < capi.MaxEventAge:
		return errors.New("config: SENT_TTL must be at least 7d (Meta accepts events up to 7 days old)")
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return errors.New("config: RETRY_MIN must be positive and at most RETRY_MAX")
	case c.ContextRetryMin <= 0 || c.ContextRetryMax < c.ContextRetryMin:
		return errors.New("config: CONTEXT_RETRY_MIN must be positive and at most CONTEXT_RETRY_MAX")
	case c.ContextWait <= 0, c.PauseInterval <= 0, c.ShutdownTimeout <= 0:
		return errors.New("config: CONTEXT_WAIT, PAUSE_INTERVAL and SHUTDOWN_TIMEOUT must be positive")
	case c.AckWait < time.Second:
		return errors.New("config: ACK_WAIT must be at least 1s")
	case c.Failpoint != "" && c.Failpoint != FailpointAfterMarkSent:
		return fmt.Errorf("config: CTM_FAILPOINT: unknown failpoint (known: %s)", FailpointAfterMarkSent)
	}
	return nil
}

// PrintUsage writes the --help text: every setting with its flag,
// environment variable and default, and the redrive subcommand.
func PrintUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: sender [flags]
       sender redrive -reason R[,R] [flags]   (sender redrive -h for details)

Consumes conversions from JetStream stream CONVERSIONS, joins each to its
ad-click context in Redis and reports it to Meta's Conversions API for
Business Messaging, at most once per event_id; what cannot be sent goes to
stream DLQ with a reason.

Every setting is an environment variable; most also have a flag, which wins.
Secrets are read from the environment only, so that they never show in ps.
Durations take Go syntax or days (10m, 36h, 8d).

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
		line := fmt.Sprintf("  %-21s %-20s%s", s.env, name, def)
		fmt.Fprintf(w, "%s\n      %s\n", strings.TrimRight(line, " "), s.help)
	}
}
