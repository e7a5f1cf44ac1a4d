package forward

import (
	"errors"
	"strconv"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/outbound"
	"github.com/ctmpipe/ctmpipe/internal/settings"
)

// Config is forwarding's configuration. FromValues fills it from the
// settings of Settings; a zero field takes its default.
type Config struct {
	URLs        []string      // FORWARD_URLS; empty: forwarding off
	MaxAge      time.Duration // FORWARD_MAX_AGE: how long a body is retried
	Concurrency int           // FORWARD_CONCURRENCY: posts in flight per destination
	Timeout     time.Duration // FORWARD_TIMEOUT: bound on one POST
	RetryMin    time.Duration // FORWARD_RETRY_MIN: first backoff ceiling
	RetryMax    time.Duration // FORWARD_RETRY_MAX: largest backoff ceiling
	Replicas    int           // replicas of the streams created (STREAM_REPLICAS); 0: 1
}

// Defaults of the settings.
const (
	// DefaultMaxAge is Meta's own retry window for Messenger and Instagram
	// webhooks: Meta drops a notification left unacknowledged for 36 hours
	// ("Webhooks — Getting Started", developers.facebook.com/docs/graph-api/
	// webhooks/getting-started; the Messenger Platform FAQ,
	// developers.facebook.com/docs/messenger-platform/faq, says it retries
	// "until successfully completed"). A destination behind ingest thus
	// gets the same grace as when Meta called it directly.
	DefaultMaxAge      = 36 * time.Hour
	DefaultConcurrency = 8
	// DefaultTimeout is half of the 20 s Meta allows a webhook call (the
	// Messenger Platform FAQ), so an inbox that answered Meta in time
	// answers us in time.
	DefaultTimeout  = 10 * time.Second
	DefaultRetryMin = time.Second
	// DefaultRetryMax caps the backoff: a destination back after an outage
	// gets its backlog within ten minutes.
	DefaultRetryMax = 10 * time.Minute
)

// Settings lists forwarding's knobs for --help; ingest and all-in-one merge
// them with theirs (settings.Merge) and pass the parsed values to
// FromValues.
func Settings() []settings.Setting {
	return []settings.Setting{
		{Env: "FORWARD_URLS", Help: "URL(s), comma-separated, that get every verified /webhook delivery byte for byte with Meta's signature (the inbox or bot Meta used to call); unset: off. Env only: a URL may hold a token"},
		{Env: "FORWARD_MAX_AGE", Flag: "forward-max-age", Default: settings.FormatDuration(DefaultMaxAge), Help: "how long a delivery is retried before it becomes a dead letter on dlq.forward (Meta's own window is 36h)"},
		{Env: "FORWARD_CONCURRENCY", Flag: "forward-concurrency", Default: strconv.Itoa(DefaultConcurrency), Help: "forwarding requests in flight per destination"},
		{Env: "FORWARD_TIMEOUT", Flag: "forward-timeout", Default: settings.FormatDuration(DefaultTimeout), Help: "bound on one forwarding request; past it the attempt counts as failed and is retried"},
		{Env: "FORWARD_RETRY_MIN", Flag: "forward-retry-min", Default: settings.FormatDuration(DefaultRetryMin), Help: "backoff after the first failed attempt (doubling, with full jitter)"},
		{Env: "FORWARD_RETRY_MAX", Flag: "forward-retry-max", Default: settings.FormatDuration(DefaultRetryMax), Help: "longest backoff between two attempts"},
	}
}

// FromValues reads the settings of Settings from v (see settings.Parse) and
// checks them. Errors name the variable, never a URL.
func FromValues(v *settings.Values) (Config, error) {
	c := Config{
		URLs:        outbound.SplitList(v.Text("FORWARD_URLS")),
		MaxAge:      v.Duration("FORWARD_MAX_AGE"),
		Concurrency: v.Int("FORWARD_CONCURRENCY"),
		Timeout:     v.Duration("FORWARD_TIMEOUT"),
		RetryMin:    v.Duration("FORWARD_RETRY_MIN"),
		RetryMax:    v.Duration("FORWARD_RETRY_MAX"),
	}
	if err := v.Err(); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// Enabled reports whether any destination is configured.
func (c Config) Enabled() bool { return len(c.URLs) > 0 }

// Validate reports the first malformed setting, by name.
func (c Config) Validate() error {
	if _, err := parseDestinations(c.URLs); err != nil {
		return err
	}
	if c.RetryMin > 0 && c.RetryMax > 0 && c.RetryMin > c.RetryMax {
		return errors.New("config: FORWARD_RETRY_MIN must not exceed FORWARD_RETRY_MAX")
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax <= 0 {
		c.RetryMax = max(DefaultRetryMax, c.RetryMin)
	}
}
