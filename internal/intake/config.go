package intake

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/settings"
)

// Config is the intake's configuration. ConfigFrom fills it from parsed
// settings; a Config built by hand gets defaults for its zero fields.
type Config struct {
	// Tokens are the accepted bearer tokens (INTAKE_TOKEN, comma-separated,
	// so that a token can be rotated without downtime). None: intake off.
	Tokens []string
	// BodyLimit is the largest body read, in bytes (INTAKE_BODY_LIMIT).
	BodyLimit int64
	// AckTimeout (INTAKE_ACK_TIMEOUT) bounds reading one request's body
	// (past it 408), then its wait for a slot and JetStream's acks (past
	// it 503).
	AckTimeout time.Duration
	// Concurrency is how many requests are checked and published at once
	// (INTAKE_CONCURRENCY); the others wait for a slot once their body is
	// read, so a slow upload holds no slot.
	Concurrency int
}

// Defaults of the settings the operator leaves unset.
const (
	DefaultBodyLimit   = 4 << 20
	DefaultAckTimeout  = 10 * time.Second
	DefaultConcurrency = 4
)

// MaxItems is the most conversions one body may hold, as many as the sender
// posts to Meta in one request.
const MaxItems = 1000

// Settings lists the intake's knobs, for the --help of the binary that
// mounts it (ingest, all-in-one): merge them into its own list with
// settings.Merge and read them back with ConfigFrom.
func Settings() []settings.Setting {
	return []settings.Setting{
		{Env: "INTAKE_TOKEN", Help: "bearer token(s) for POST /v1/conversions on the admin listener, comma-separated for rotation; unset: the intake answers 404 (env only)"},
		{Env: "INTAKE_BODY_LIMIT", Flag: "intake-body-limit", Default: "4MiB", Help: "largest POST /v1/conversions body; bigger ones get 413 (bytes, or with KiB/MiB)"},
		{Env: "INTAKE_ACK_TIMEOUT", Flag: "intake-ack-timeout", Default: DefaultAckTimeout.String(), Help: "how long a POST /v1/conversions body may take to arrive (past it 408), then how long the request waits for a slot and JetStream's acks (past it 503); keep it below half the listener's write timeout"},
		{Env: "INTAKE_CONCURRENCY", Flag: "intake-concurrency", Default: strconv.Itoa(DefaultConcurrency), Help: "POST /v1/conversions requests checked and published at once; the others wait once their body is read (a slow upload holds no slot)"},
	}
}

// ConfigFrom reads the settings of Settings from v. A malformed one is
// recorded in v: check v.Err() afterwards, as for the caller's own settings.
func ConfigFrom(v *settings.Values) Config {
	return Config{
		Tokens:      splitTokens(v.Text("INTAKE_TOKEN")),
		BodyLimit:   v.Size("INTAKE_BODY_LIMIT"),
		AckTimeout:  v.Duration("INTAKE_ACK_TIMEOUT"),
		Concurrency: v.Int("INTAKE_CONCURRENCY"),
	}
}

// Enabled reports whether any token is set, that is whether the intake
// takes conversions (and needs NATS).
func (c Config) Enabled() bool { return len(c.Tokens) > 0 }

// Validate reports the first inconsistent setting by name, never a value.
func (c Config) Validate() error {
	switch {
	case c.BodyLimit < 0:
		return errors.New("config: INTAKE_BODY_LIMIT must be positive")
	case c.AckTimeout < 0:
		return errors.New("config: INTAKE_ACK_TIMEOUT must be positive")
	case c.Concurrency < 0:
		return errors.New("config: INTAKE_CONCURRENCY must be positive")
	}
	for _, t := range c.Tokens {
		if len(t) < minTokenLen {
			return errors.New("config: INTAKE_TOKEN: each token must be at least 16 characters")
		}
	}
	return nil
}

// minTokenLen keeps guessable tokens out: the intake writes to the pipeline.
const minTokenLen = 16

func (c *Config) setDefaults() {
	if c.BodyLimit == 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
}

// splitTokens splits a comma-separated list, dropping empty entries.
func splitTokens(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
