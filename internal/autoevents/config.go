package autoevents

import (
	"context"

	"github.com/ctmpipe/ctmpipe/internal/settings"
)

// Switch decides per business whether its automatic events are reported.
// The global AUTOMATIC_EVENTS setting (Config) implements it, and
// RegistrySwitch adds the business registry's per-business flag. An error
// means the answer is unknown for now (Redis away): the delivery is not
// answered 200, so that Meta sends it again.
type Switch interface {
	Enabled(ctx context.Context, businessID string) (bool, error)
}

// Config is the feature's configuration.
type Config struct {
	// On is AUTOMATIC_EVENTS: report every business's automatic events.
	On bool
}

// Settings lists the feature's knobs, for the --help of the binary that
// parses webhooks (ingest, all-in-one): merge them with settings.Merge and
// read them back with ConfigFrom.
func Settings() []settings.Setting {
	return []settings.Setting{
		{Env: "AUTOMATIC_EVENTS", Flag: "automatic-events", Default: "off", Bool: true,
			Help: "on: turn the purchases and leads Meta detects in click-to-WhatsApp threads (webhook field automatic_events) into conversions and publish them to conversions.whatsapp, answering Meta 200 only once JetStream stored them (see docs/automatic-events.md)"},
	}
}

// ConfigFrom reads the settings of Settings from v. A malformed one is
// recorded in v: check v.Err() afterwards.
func ConfigFrom(v *settings.Values) Config {
	return Config{On: v.Bool("AUTOMATIC_EVENTS")}
}

// Enabled reports whether AUTOMATIC_EVENTS is on; it is the same for every
// business.
func (c Config) Enabled(context.Context, string) (bool, error) { return c.On, nil }
