package sender

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/ctmpipe/ctmpipe/internal/jsstream"
	"github.com/ctmpipe/ctmpipe/internal/notify"
	"github.com/ctmpipe/ctmpipe/internal/settings"
	"github.com/ctmpipe/ctmpipe/internal/startup"
	"github.com/ctmpipe/ctmpipe/internal/tracing"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/ledger"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

// Config is everything the sender is configured with. ParseConfig fills it
// from flags and the environment; cmd/all-in-one may start from
// DefaultConfig and set fields.
type Config struct {
	Tracing         tracing.Config           // OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME: traces off when unset
	Notify          notify.Config            // NOTIFY_*: the partner's notifications (pauses, recoveries, dead letters, version)
	NATSURL         string                   // NATS_URL: required by cmd/sender, not by New
	RedisURL        string                   // REDIS_URL: required by cmd/sender, not by New
	AccessToken     string                   // CAPI_ACCESS_TOKEN (env only)
	DatasetsFile    string                   // CAPI_DATASETS_FILE
	Datasets        map[string]DatasetConfig // read from DatasetsFile, tokens resolved
	PartnerAgent    string                   // CAPI_PARTNER_AGENT
	TestEventCode   string                   // CAPI_TEST_EVENT_CODE
	GraphBase       string                   // GRAPH_API_BASE
	GraphVersion    string                   // GRAPH_API_VERSION
	AppSecret       string                   // CAPI_APP_SECRET (env only): keys appsecret_proof of the default token
	DryRunFile      string                   // CAPI_DRYRUN_FILE: append requests there instead of posting
	ContextWait     time.Duration            // CONTEXT_WAIT
	ContextRetryMin time.Duration            // CONTEXT_RETRY_MIN: first wait for a missing context
	ContextRetryMax time.Duration            // CONTEXT_RETRY_MAX
	RequireReferral []string                 // REQUIRE_REFERRAL: channels whose conversions need an ad referral (referral.go)
	BatchSize       int                      // BATCH_SIZE: messages per fetch
	Workers         int                      // WORKERS: concurrent fetch loops
	// MaxInflight (MAX_INFLIGHT) bounds the Graph requests being posted at
	// once (twice as many may be started), MaxInflightPerBusiness (MAX_INFLIGHT_PER_BUSINESS) those of one
	// business, so that one business can neither take every slot nor be
	// starved (pipeline.go).
	MaxInflight            int
	MaxInflightPerBusiness int
	// MaxHeldPerBusiness (MAX_HELD_PER_BUSINESS) bounds the messages of a
	// stuck business (hung, or backing off for long) counted against
	// MAX_ACK_PENDING: held here, or handed back for 5 s or more. Past it
	// they are parked (pipeline.go). A quarter of MAX_ACK_PENDING at most,
	// whatever it says.
	MaxHeldPerBusiness int
	Linger             time.Duration // LINGER: how long a dataset's queue waits to fill a request; 0: none
	// LingerBacklog (LINGER_BACKLOG) is how long a queue may keep filling
	// while the consumer has a backlog and its events keep arriving
	// (pipeline.go); 0: as LINGER.
	LingerBacklog   time.Duration
	QueueMemory     int64         // QUEUE_MEMORY: message bytes held before fetching pauses
	MaxAckPending   int           // MAX_ACK_PENDING of the consumer it creates
	AckWait         time.Duration // ACK_WAIT of the consumer it creates
	SendLease       time.Duration // SEND_LEASE: ledger claim lease, > HTTPTimeout
	SentTTL         time.Duration // SENT_TTL: how long sent markers are kept
	HTTPTimeout     time.Duration // HTTP_TIMEOUT of one Graph API request
	RetryMin        time.Duration // RETRY_MIN: first backoff after a Graph error
	RetryMax        time.Duration // RETRY_MAX: longest backoff
	PauseInterval   time.Duration // PAUSE_INTERVAL after a token error
	MetricsAddr     string        // METRICS_ADDR
	PprofAddr       string        // PPROF_ADDR: /debug/pprof listener; empty: off
	LogLevel        zapcore.Level // LOG_LEVEL
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT for the requests in flight, ≥ HTTPTimeout
	Failpoint       string        // CTM_FAILPOINT (env only, tests only)
	// RegistryKey is REGISTRY_KEY (env only): opens the business registry's
	// encrypted tokens and app secrets (NewRegistry).
	RegistryKey    string
	Trail          bool // TRAIL: keep each event's trail (internal/trail)
	StreamReplicas int  // STREAM_REPLICAS of the streams it creates; 0: 1

	// Replicas: REDIS_MIN_REPLICAS and REDIS_REPLICA_TIMEOUT. The ledger's
	// writes and the pause records wait for them (internal/replicas), and
	// /readyz answers 503 while fewer are connected.
	Replicas replicas.Config
}

// DatasetConfig is one business's entry of CAPI_DATASETS_FILE with its token
// already read from the environment variable the file names.
type DatasetConfig struct {
	DatasetID string // empty: resolve with the Dataset API using Token
	TokenEnv  string // the environment variable Token came from
	Token     string
	// AppSecretEnv names the environment variable holding the secret of the
	// app that issued Token ("": CAPI_APP_SECRET); AppSecret is its value.
	AppSecretEnv string
	AppSecret    string
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
	DefaultMetricsAddr     = "127.0.0.1:9090" // metrics stay off the internet unless asked
	// DefaultHTTPTimeout: Meta answers "the majority of requests" to
	// /events in under 600 ms and suggests a 1500 ms client timeout
	// (Conversions API, Troubleshooting:
	// https://developers.facebook.com/docs/marketing-api/conversions-api/support);
	// a request still unanswered after 20 s (over
	// 30 times that) is almost surely lost, and waiting longer only holds
	// the business's slot. It is not shorter because a request cut off after
	// it was written ends in_doubt, which an operator must check by hand.
	// (A hung business no longer holds up the others however long it is:
	// MAX_INFLIGHT_PER_BUSINESS.)
	DefaultHTTPTimeout = 20 * time.Second
	// DefaultShutdownTimeout is HTTP_TIMEOUT and a margin for the acks,
	// within Kubernetes's default 30 s grace period.
	DefaultShutdownTimeout = 25 * time.Second
	// DefaultMaxInflight: 512 posts at once. By Little's law, 1,000
	// businesses' backlog at the CPU's ~12,000 conversions/s in requests of
	// ~15 events is ~800 requests/s; at a 200 ms Graph (log-normal, mean
	// ~220 ms) plus the post marker and the client's own time each holds a
	// slot ~0.4 s here, so 256 capped it at ~0.7 of the instant-Graph rate
	// and 512 reached ~0.9 (docs/sender.md, BENCHMARKS.md).
	DefaultMaxInflight            = 512
	DefaultMaxInflightPerBusiness = 4
	// DefaultMaxHeldPerBusiness is a quarter of DefaultMaxAckPending: a
	// stuck business leaves three quarters to the others.
	DefaultMaxHeldPerBusiness = DefaultMaxAckPending / 4
	DefaultLinger             = 100 * time.Millisecond
	DefaultLingerBacklog      = 2 * time.Second
	DefaultQueueMemory        = 128 << 20
)

// DefaultConfig returns a Config with every default filled in and nothing
// required set.
func DefaultConfig() Config {
	return Config{
		GraphBase:              capi.DefaultBaseURL,
		GraphVersion:           capi.DefaultVersion,
		ContextWait:            DefaultContextWait,
		ContextRetryMin:        DefaultContextRetryMin,
		ContextRetryMax:        DefaultContextRetryMax,
		RequireReferral:        []string{DefaultRequireReferral},
		BatchSize:              DefaultBatchSize,
		Workers:                DefaultWorkers,
		MaxInflight:            DefaultMaxInflight,
		MaxInflightPerBusiness: DefaultMaxInflightPerBusiness,
		MaxHeldPerBusiness:     DefaultMaxHeldPerBusiness,
		Linger:                 DefaultLinger,
		LingerBacklog:          DefaultLingerBacklog,
		QueueMemory:            DefaultQueueMemory,
		MaxAckPending:          DefaultMaxAckPending,
		AckWait:                DefaultAckWait,
		SendLease:              DefaultSendLease,
		SentTTL:                ledger.DefaultSentTTL,
		HTTPTimeout:            DefaultHTTPTimeout,
		RetryMin:               DefaultRetryMin,
		RetryMax:               DefaultRetryMax,
		PauseInterval:          DefaultPauseInterval,
		MetricsAddr:            DefaultMetricsAddr,
		LogLevel:               zapcore.InfoLevel,
		ShutdownTimeout:        DefaultShutdownTimeout,
		Trail:                  true,
	}
}

// Settings lists every knob in the order --help prints them (all-in-one
// merges it with ingest's).
func Settings() []settings.Setting {
	d, dur := DefaultConfig(), settings.FormatDuration
	return append([]settings.Setting{
		{Env: "NATS_URL", Flag: "nats-url", Help: "NATS server URL (required)"},
		{Env: "REDIS_URL", Flag: "redis-url", Help: "Redis URL: redis://, rediss://, unix://, redis+cluster://, redis+sentinel:// (required)"},
		{Env: "CAPI_ACCESS_TOKEN", Help: "default Conversions API access token (env only; required unless CAPI_DATASETS_FILE gives tokens or CAPI_DRYRUN_FILE is set)"},
		{Env: "CAPI_APP_SECRET", Help: "secret of the app that issued CAPI_ACCESS_TOKEN: keys appsecret_proof (env only; one secret; unset: no proof)"},
		{Env: "CAPI_DATASETS_FILE", Flag: "datasets-file", Help: `JSON {"<business_id>": {"dataset_id": "...", "access_token_env": "ENV_VAR", "app_secret_env": "ENV_VAR"}}; businesses not listed use the Dataset API`},
		{Env: "CAPI_PARTNER_AGENT", Flag: "partner-agent", Help: "partner_agent sent with every request"},
		{Env: "CAPI_TEST_EVENT_CODE", Flag: "test-event-code", Help: "test_event_code sent with every request (Events Manager test tab)"},
		{Env: "CAPI_DRYRUN_FILE", Flag: "dry-run-file", Help: "append the requests to this JSONL file instead of posting them (no token needed)"},
		{Env: "GRAPH_API_BASE", Flag: "graph-api-base", Default: d.GraphBase, Help: "Graph API base URL"},
		{Env: "GRAPH_API_VERSION", Flag: "graph-api-version", Default: d.GraphVersion, Help: "Marketing API version of the Conversions API calls (vNN.0; default the newest this build knows). Logged at start: WARN within 90 days of its expiry, ERROR once expired (Meta then refuses it with code 2635: every business pauses, nothing is dead-lettered). Meta's dates: ctm versions"},
		{Env: "CONTEXT_WAIT", Flag: "context-wait", Default: dur(d.ContextWait), Help: "how long a conversion waits for its ad-click context before dead letter unattributed"},
		{Env: "CONTEXT_RETRY_MIN", Flag: "context-retry-min", Default: dur(d.ContextRetryMin), Help: "first delay before looking for a missing context again (doubles each time)"},
		{Env: "CONTEXT_RETRY_MAX", Flag: "context-retry-max", Default: dur(d.ContextRetryMax), Help: "longest delay between context lookups"},
		{Env: "REQUIRE_REFERRAL", Flag: "require-referral", Default: strings.Join(d.RequireReferral, ","), Help: "channels (messenger, instagram) whose conversions wait for a stored ad referral; none: send with page/IG ids alone; true: both (Meta documents no referral on Instagram message webhooks)"},
		{Env: "BATCH_SIZE", Flag: "batch-size", Default: strconv.Itoa(d.BatchSize), Help: "messages fetched and processed together (1-10000)"},
		{Env: "WORKERS", Flag: "workers", Default: strconv.Itoa(d.Workers), Help: "concurrent fetch loops (each parses, joins and queues what it fetched)"},
		{Env: "MAX_INFLIGHT", Flag: "max-inflight", Default: strconv.Itoa(d.MaxInflight), Help: "Graph API requests being posted at once, over all businesses (sized for a 200-600 ms Graph); twice as many may be claiming or marking sent"},
		{Env: "MAX_HELD_PER_BUSINESS", Flag: "max-held-per-business", Default: strconv.Itoa(d.MaxHeldPerBusiness), Help: "messages of a stuck business (no request started for 5s, or handed back for 5s or more) that may count against MAX_ACK_PENDING; past these they are parked, so that one business cannot fill it (at most MAX_ACK_PENDING/4)"},
		{Env: "MAX_INFLIGHT_PER_BUSINESS", Flag: "max-inflight-per-business", Default: strconv.Itoa(d.MaxInflightPerBusiness), Help: "Graph API requests of one business in flight at once: a slow or hung business holds at most these"},
		{Env: "LINGER", Flag: "linger", Default: dur(d.Linger), Help: "how long a dataset's events wait for more to fill a request (up to 1000 events); 0: send at once"},
		{Env: "LINGER_BACKLOG", Flag: "linger-backlog", Default: dur(d.LingerBacklog), Help: "while the consumer has a backlog (a fetch's worth or more pending), how long a business's events may wait for more of its own to fill a request, as long as they keep arriving and MAX_ACK_PENDING and QUEUE_MEMORY leave room to read ahead; 0: LINGER alone (docs/sender.md)"},
		{Env: "QUEUE_MEMORY", Flag: "queue-memory", Default: "128MiB", Help: "message bytes queued or in flight before the sender stops fetching (MAX_ACK_PENDING bounds the count)"},
		{Env: "MAX_ACK_PENDING", Flag: "max-ack-pending", Default: strconv.Itoa(d.MaxAckPending), Help: "MaxAckPending of the consumer when the sender creates it; waiting and paused messages count against it"},
		{Env: "ACK_WAIT", Flag: "ack-wait", Default: dur(d.AckWait), Help: "AckWait of the consumer when the sender creates it: an unacked message comes again after it"},
		{Env: "SEND_LEASE", Flag: "send-lease", Default: dur(d.SendLease), Help: "how long a claim on an event protects a send in flight; must exceed HTTP_TIMEOUT"},
		{Env: "SENT_TTL", Flag: "sent-ttl", Default: dur(d.SentTTL), Help: "how long sent event ids are remembered (at least 7d: Meta's window)"},
		{Env: "HTTP_TIMEOUT", Flag: "http-timeout", Default: dur(d.HTTPTimeout), Help: "timeout of one Graph API request"},
		{Env: "RETRY_MIN", Flag: "retry-min", Default: dur(d.RetryMin), Help: "first backoff after a transient or throttling Graph error"},
		{Env: "RETRY_MAX", Flag: "retry-max", Default: dur(d.RetryMax), Help: "longest backoff"},
		{Env: "PAUSE_INTERVAL", Flag: "pause-interval", Default: dur(d.PauseInterval), Help: "how long a business is paused after a token error before it is tried again"},
		{Env: "METRICS_ADDR", Flag: "metrics-addr", Default: d.MetricsAddr, Help: "address for /metrics, /healthz and /readyz; localhost by default, keep it off the internet (-metrics-addr= turns them off)"},
		{Env: "LOG_LEVEL", Flag: "log-level", Default: "info", Help: "debug, info, warn or error"},
		{Env: "SHUTDOWN_TIMEOUT", Flag: "shutdown-timeout", Default: dur(d.ShutdownTimeout), Help: "how long requests in flight may take to finish after SIGTERM (at least HTTP_TIMEOUT)"},
		{Env: registry.KeyEnv, Help: "key(s) that open the business registry's tokens and app secrets: the same value as ingest's (base64 of 32 bytes, as id:key, comma-separated); unset: businesses whose records hold secrets are parked and logged (env only)"},
		{Env: "TRAIL", Flag: "trail", Default: "true", Bool: true, Help: "keep each event's trail (state, attempts, Meta's answer or the dead letter) for SENT_TTL, for GET /v1/events/{business_id}/{event_id}; false: only counters"},
		{Env: "PPROF_ADDR", Flag: "pprof-addr", Help: "address for Go's /debug/pprof profiling endpoints, on a listener of their own; unset: off (bind to localhost: profiles reveal internals)"},
		jsstream.Setting(),
	}, append(append(append(startup.ReplicaSettings(), tracing.Settings()...), notify.Settings()...), notify.DeadLetterSettings()...)...)
}

// ParseConfig reads the configuration from args (flags) and getenv; each
// flag's default is its environment variable, so flags win. It returns
// flag.ErrHelp for -h/--help (print PrintUsage then) and an error naming a
// missing or malformed setting, never its value. It reads CAPI_DATASETS_FILE.
func ParseConfig(args []string, getenv func(string) string) (Config, error) {
	v, err := settings.Parse("sender", args, getenv, Settings())
	if err != nil {
		return Config{}, err
	}
	cfg := Config{
		NATSURL:                v.Text("NATS_URL"),
		RedisURL:               v.Text("REDIS_URL"),
		AccessToken:            v.Text("CAPI_ACCESS_TOKEN"),
		DatasetsFile:           v.Text("CAPI_DATASETS_FILE"),
		PartnerAgent:           v.Text("CAPI_PARTNER_AGENT"),
		TestEventCode:          v.Text("CAPI_TEST_EVENT_CODE"),
		DryRunFile:             v.Text("CAPI_DRYRUN_FILE"),
		GraphBase:              strings.TrimRight(v.Text("GRAPH_API_BASE"), "/"),
		GraphVersion:           v.Text("GRAPH_API_VERSION"),
		AppSecret:              v.Text("CAPI_APP_SECRET"),
		ContextWait:            v.Duration("CONTEXT_WAIT"),
		ContextRetryMin:        v.Duration("CONTEXT_RETRY_MIN"),
		ContextRetryMax:        v.Duration("CONTEXT_RETRY_MAX"),
		BatchSize:              v.Int("BATCH_SIZE"),
		Workers:                v.Int("WORKERS"),
		MaxInflight:            v.Int("MAX_INFLIGHT"),
		MaxInflightPerBusiness: v.Int("MAX_INFLIGHT_PER_BUSINESS"),
		MaxHeldPerBusiness:     v.Int("MAX_HELD_PER_BUSINESS"),
		QueueMemory:            v.Size("QUEUE_MEMORY"),
		MaxAckPending:          v.Int("MAX_ACK_PENDING"),
		AckWait:                v.Duration("ACK_WAIT"),
		SendLease:              v.Duration("SEND_LEASE"),
		SentTTL:                v.Duration("SENT_TTL"),
		HTTPTimeout:            v.Duration("HTTP_TIMEOUT"),
		RetryMin:               v.Duration("RETRY_MIN"),
		RetryMax:               v.Duration("RETRY_MAX"),
		PauseInterval:          v.Duration("PAUSE_INTERVAL"),
		MetricsAddr:            v.Text("METRICS_ADDR"),
		LogLevel:               v.Level("LOG_LEVEL"),
		ShutdownTimeout:        v.Duration("SHUTDOWN_TIMEOUT"),
		PprofAddr:              v.Text("PPROF_ADDR"),
		Failpoint:              getenv("CTM_FAILPOINT"),
		RegistryKey:            v.Text(registry.KeyEnv),
		Trail:                  v.Bool("TRAIL"),
		Tracing:                tracing.FromValues(v),
	}
	if err := v.Err(); err != nil {
		return Config{}, err
	}
	if _, err := capi.ParseVersion(cfg.GraphVersion); err != nil {
		return Config{}, fmt.Errorf("config: GRAPH_API_VERSION: %w", err)
	}
	// LINGER may be 0 (no linger), which settings' Duration refuses.
	if cfg.Linger, err = settings.ParseDuration(v.Text("LINGER")); err != nil || cfg.Linger < 0 {
		return Config{}, errors.New("config: LINGER: want a duration such as 100ms, or 0 for none")
	}
	if cfg.LingerBacklog, err = settings.ParseDuration(v.Text("LINGER_BACKLOG")); err != nil || cfg.LingerBacklog < 0 {
		return Config{}, errors.New("config: LINGER_BACKLOG: want a duration such as 2s, or 0 for none")
	}
	if cfg.RequireReferral, err = ParseRequireReferral(v.Text("REQUIRE_REFERRAL")); err != nil {
		return Config{}, err
	}
	if cfg.Notify, err = notify.FromValues(v, true); err != nil {
		return Config{}, err
	}
	if cfg.StreamReplicas, err = jsstream.Replicas(v); err != nil {
		return Config{}, err
	}
	if cfg.Replicas, err = startup.ReplicasFrom(v); err != nil {
		return Config{}, err
	}
	// Every missing one at once. The token is required unless the datasets
	// file gives tokens (checked once it is read), the registry may (with
	// REGISTRY_KEY; a business without one is parked and logged when it
	// sends), or the run is dry.
	token := cfg.AccessToken
	if cfg.DatasetsFile != "" || cfg.DryRunFile != "" || cfg.RegistryKey != "" {
		token = "not needed here"
	}
	if err := settings.Required(
		settings.Need{Env: "NATS_URL", Value: cfg.NATSURL},
		settings.Need{Env: "REDIS_URL", Value: cfg.RedisURL},
		settings.Need{Env: "CAPI_ACCESS_TOKEN", Value: token, Text: accessTokenRequired},
	); err != nil {
		return Config{}, err
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
			if e.AppSecretEnv != "" && e.AppSecret == "" {
				return Config{}, fmt.Errorf("config: CAPI_DATASETS_FILE: business %s: %s is not set", id, e.AppSecretEnv)
			}
		}
		if _, err := cfg.appSecrets(); err != nil {
			return Config{}, err
		}
	}
	if _, err := registry.ParseKeyring(cfg.RegistryKey); err != nil {
		return Config{}, fmt.Errorf("config: %s: %w", registry.KeyEnv, err)
	}
	if cfg.AccessToken == "" && len(cfg.Datasets) == 0 && cfg.DryRunFile == "" && cfg.RegistryKey == "" {
		return Config{}, errors.New("config: " + accessTokenRequired)
	}
	return cfg, cfg.Validate()
}

const accessTokenRequired = "CAPI_ACCESS_TOKEN is required (or REGISTRY_KEY with tokens in the business registry, CAPI_DATASETS_FILE with tokens, or CAPI_DRYRUN_FILE for a dry run)"

// appSecrets maps each token to the secret of the app that issued it, as
// capi.Config.AppSecrets takes it. A token is issued by one app, so one token
// given two secrets (two entries, or an entry and CAPI_APP_SECRET for the
// default token) is a configuration error: one of the proofs would be wrong.
func (c Config) appSecrets() (map[string]string, error) {
	out := map[string]string{}
	for id, e := range c.Datasets {
		secret := e.AppSecret
		if e.AppSecretEnv == "" {
			secret = c.AppSecret
		}
		if e.Token == "" {
			continue
		}
		if prev, ok := out[e.Token]; ok && prev != secret {
			return nil, fmt.Errorf("config: CAPI_DATASETS_FILE: business %s: its token is listed with two different app secrets", id)
		}
		if e.Token == c.AccessToken && secret != c.AppSecret {
			return nil, fmt.Errorf("config: CAPI_DATASETS_FILE: business %s: CAPI_ACCESS_TOKEN is listed with an app secret other than CAPI_APP_SECRET", id)
		}
		out[e.Token] = secret
	}
	return out, nil
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
	case c.ShutdownTimeout < c.HTTPTimeout:
		// Shorter, a deploy during a slow Meta cuts off requests already
		// written, and each becomes an in_doubt dead letter.
		return errors.New("config: SHUTDOWN_TIMEOUT must be at least HTTP_TIMEOUT (requests in flight at SIGTERM may take that long)")
	case c.MaxInflight < 1 || c.MaxInflight > 10000:
		return errors.New("config: MAX_INFLIGHT must be between 1 and 10000")
	case c.MaxInflightPerBusiness < 1 || c.MaxInflightPerBusiness > c.MaxInflight:
		return errors.New("config: MAX_INFLIGHT_PER_BUSINESS must be between 1 and MAX_INFLIGHT")
	case c.MaxHeldPerBusiness < 1:
		return errors.New("config: MAX_HELD_PER_BUSINESS must be at least 1")
	case c.Linger < 0 || c.Linger > 10*time.Second:
		return errors.New("config: LINGER must be between 0 and 10s")
	case c.LingerBacklog < 0 || c.LingerBacklog > time.Minute:
		return errors.New("config: LINGER_BACKLOG must be between 0 and 1m")
	case c.QueueMemory < 1<<20:
		return errors.New("config: QUEUE_MEMORY must be at least 1MiB")
	case c.AckWait < time.Second:
		return errors.New("config: ACK_WAIT must be at least 1s")
	case c.Failpoint != "" && c.Failpoint != FailpointAfterMarkSent && c.Failpoint != FailpointBeforePost:
		return fmt.Errorf("config: CTM_FAILPOINT: unknown failpoint (known: %s, %s)", FailpointAfterMarkSent, FailpointBeforePost)
	}
	return nil
}

// PrintUsage writes the --help text: every setting with its flag,
// environment variable and default, and the redrive subcommand.
func PrintUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: sender [flags]
       sender redrive -reason R[,R] [flags]   (sender redrive -h for details)
       sender dlq list|show SEQ [flags]       (sender dlq -h: read the dead letters)

Consumes conversions from JetStream stream CONVERSIONS, joins each to its
ad-click context in Redis and reports it to Meta's Conversions API for
Business Messaging, at most once per event_id; what cannot be sent goes to
stream DLQ with a reason.

Every setting is an environment variable; most also have a flag, which wins.
Secrets are read from the environment only, so that they never show in ps.
Durations take Go syntax or days (10m, 36h, 8d).

`)
	settings.PrintUsage(w, Settings())
}

// ParseDuration is time.ParseDuration that also takes a leading day count
// ("8d", "1d12h"), the natural unit of TTLs; see settings.ParseDuration.
func ParseDuration(s string) (time.Duration, error) { return settings.ParseDuration(s) }
