package notify

import (
	"errors"
	"strconv"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/outbound"
	"github.com/ctmpipe/ctmpipe/internal/settings"
)

// Config is the notifications' configuration. FromValues fills it from
// Settings (and DeadLetterSettings, on a sender); a zero field takes its
// default.
type Config struct {
	URLs     []string      // NOTIFY_URLS; empty: notifications off
	Secret   string        // NOTIFY_SECRET: signs every body; required with URLs
	MaxAge   time.Duration // NOTIFY_MAX_AGE: how long a notification is retried
	Timeout  time.Duration // NOTIFY_TIMEOUT: bound on one POST
	RetryMin time.Duration // NOTIFY_RETRY_MIN: first backoff ceiling
	RetryMax time.Duration // NOTIFY_RETRY_MAX: largest backoff ceiling
	// DeadLetterThreshold and DeadLetterWindow: dead_letters.rising is told
	// once a window when a business has that many dead letters in it.
	DeadLetterThreshold int
	DeadLetterWindow    time.Duration
	Replicas            int // STREAM_REPLICAS of the streams created; 0: 1
}

// Defaults of the settings.
const (
	// DefaultMaxAge: a receiver down for a day still gets what happened.
	DefaultMaxAge   = 24 * time.Hour
	DefaultTimeout  = 10 * time.Second
	DefaultRetryMin = time.Second
	DefaultRetryMax = 10 * time.Minute
	// DefaultDeadLetterThreshold and DefaultDeadLetterWindow: a hundred an
	// hour is past the odd bad conversion, and told within the hour.
	DefaultDeadLetterThreshold = 100
	DefaultDeadLetterWindow    = time.Hour
)

// Settings lists the delivery's knobs; ingest, sender and all-in-one merge
// them with theirs.
func Settings() []settings.Setting {
	dur := settings.FormatDuration
	return []settings.Setting{
		{Env: "NOTIFY_URLS", Help: "URL(s), comma-separated, that get signed JSON notifications (business.paused, business.resumed, business.recovered, dead_letters.rising, graph.version_expiring; docs/notifications.md); unset: off. Env only: a URL may hold a token"},
		{Env: "NOTIFY_SECRET", Help: "key of the HMAC-SHA256 signature (X-Ctm-Signature-256) of every notification; required with NOTIFY_URLS (env only)"},
		{Env: "NOTIFY_MAX_AGE", Flag: "notify-max-age", Default: dur(DefaultMaxAge), Help: "how long a notification is retried before it becomes a dead letter on dlq.notify"},
		{Env: "NOTIFY_TIMEOUT", Flag: "notify-timeout", Default: dur(DefaultTimeout), Help: "bound on one notification request"},
		{Env: "NOTIFY_RETRY_MIN", Flag: "notify-retry-min", Default: dur(DefaultRetryMin), Help: "backoff after a notification's first failed attempt (doubling, with full jitter)"},
		{Env: "NOTIFY_RETRY_MAX", Flag: "notify-retry-max", Default: dur(DefaultRetryMax), Help: "longest backoff between two notification attempts"},
	}
}

// DeadLetterSettings are the sender's: it counts the dead letters.
func DeadLetterSettings() []settings.Setting {
	return []settings.Setting{
		{Env: "NOTIFY_DEAD_LETTERS_THRESHOLD", Flag: "notify-dead-letters-threshold", Default: strconv.Itoa(DefaultDeadLetterThreshold), Help: "dead letters of one business within NOTIFY_DEAD_LETTERS_WINDOW that send dead_letters.rising (once a window)"},
		{Env: "NOTIFY_DEAD_LETTERS_WINDOW", Flag: "notify-dead-letters-window", Default: settings.FormatDuration(DefaultDeadLetterWindow), Help: "the window NOTIFY_DEAD_LETTERS_THRESHOLD counts in"},
	}
}

// FromValues reads Settings (and DeadLetterSettings when declared, i.e.
// withDeadLetters) from v and checks them. Errors name the variable, never
// a URL or the secret.
func FromValues(v *settings.Values, withDeadLetters bool) (Config, error) {
	c := Config{
		URLs:     outbound.SplitList(v.Text("NOTIFY_URLS")),
		Secret:   v.Text("NOTIFY_SECRET"),
		MaxAge:   v.Duration("NOTIFY_MAX_AGE"),
		Timeout:  v.Duration("NOTIFY_TIMEOUT"),
		RetryMin: v.Duration("NOTIFY_RETRY_MIN"),
		RetryMax: v.Duration("NOTIFY_RETRY_MAX"),
	}
	if withDeadLetters {
		c.DeadLetterThreshold = v.Int("NOTIFY_DEAD_LETTERS_THRESHOLD")
		c.DeadLetterWindow = v.Duration("NOTIFY_DEAD_LETTERS_WINDOW")
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
	if _, err := outbound.ParseDestinations("NOTIFY_URLS", c.URLs); err != nil {
		return err
	}
	if c.Enabled() && c.Secret == "" {
		return errors.New("config: NOTIFY_SECRET is required with NOTIFY_URLS: receivers verify each notification's signature with it")
	}
	if c.RetryMin > 0 && c.RetryMax > 0 && c.RetryMin > c.RetryMax {
		return errors.New("config: NOTIFY_RETRY_MIN must not exceed NOTIFY_RETRY_MAX")
	}
	if c.DeadLetterThreshold < 0 {
		return errors.New("config: NOTIFY_DEAD_LETTERS_THRESHOLD must not be negative (0: not told)")
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
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
	if c.DeadLetterWindow <= 0 {
		c.DeadLetterWindow = DefaultDeadLetterWindow
	}
}
