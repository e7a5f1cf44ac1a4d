package services

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/internal/autoevents"
	"github.com/ctmpipe/ctmpipe/internal/forward"
	"github.com/ctmpipe/ctmpipe/internal/ingest"
	"github.com/ctmpipe/ctmpipe/internal/intake"
	"github.com/ctmpipe/ctmpipe/internal/jsstream"
	"github.com/ctmpipe/ctmpipe/internal/notify"
	"github.com/ctmpipe/ctmpipe/internal/settings"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// Config is what the admin listener's services and the work beside the
// webhook receiver are configured with.
type Config struct {
	AdminToken      string            // ADMIN_TOKEN: the console logs in with it
	NATSURL         string            // NATS_URL: needed by the intake, forwarding and automatic events
	Intake          intake.Config     // INTAKE_*: POST /v1/conversions
	Forward         forward.Config    // FORWARD_*: copies of verified /webhook bodies
	AutoEvents      autoevents.Config // AUTOMATIC_EVENTS: Meta's automatic events become conversions
	Notify          notify.Config     // NOTIFY_*: the partner's notifications (business.resumed from here)
	RegistryKey     string            // REGISTRY_KEY (env only): encrypts the registry's secrets
	GraphBase       string            // GRAPH_API_BASE: the registry API's Dataset API calls
	GraphVersion    string            // GRAPH_API_VERSION
	CAPIAccessToken string            // CAPI_ACCESS_TOKEN (env only): resolves datasets of businesses without a token
}

// Settings lists the services' knobs: the intake's, forwarding's, the
// automatic events' and the registry API's.
func Settings() []settings.Setting {
	all, err := settings.Merge(intake.Settings(), forward.Settings(), autoevents.Settings(), registrySettings(), notify.Settings())
	if err != nil {
		panic(err) // a programming error, caught by TestSettingsMerge
	}
	return all
}

// IngestSettings are the ingest binary's: the receiver's and the services'.
func IngestSettings() []settings.Setting {
	all, err := settings.Merge(ingest.Settings(), Settings())
	if err != nil {
		panic(err)
	}
	return all
}

// registrySettings are those of the business registry's admin API, with the
// sender's names and defaults for the Graph API, so that all-in-one merges
// them (GRAPH_API_VERSION is the receiver's: it judges it at start).
func registrySettings() []settings.Setting {
	return []settings.Setting{
		{Env: registry.KeyEnv, Help: "key(s) encrypting the business registry's tokens and app secrets: base64 of 32 bytes, as id:key, comma-separated, the first encrypts (e.g. k1:$(openssl rand -base64 32)); unset: the registry stores no secrets (env only)"},
		{Env: "GRAPH_API_BASE", Flag: "graph-api-base", Default: capi.DefaultBaseURL, Help: "Graph API base URL"},
		{Env: "CAPI_ACCESS_TOKEN", Help: "default Conversions API access token: the admin API resolves the dataset of a business registered without a token of its own with it (env only)"},
	}
}

// ConfigFrom reads the services' settings from v, parsed with a list that
// holds Settings() and ingest's (ADMIN_TOKEN, NATS_URL, STREAM_REPLICAS,
// GRAPH_API_VERSION), and validates them.
func ConfigFrom(v *settings.Values) (Config, error) {
	cfg := Config{
		AdminToken:      v.Text("ADMIN_TOKEN"),
		NATSURL:         v.Text("NATS_URL"),
		Intake:          intake.ConfigFrom(v),
		AutoEvents:      autoevents.ConfigFrom(v),
		RegistryKey:     v.Text(registry.KeyEnv),
		GraphBase:       strings.TrimRight(v.Text("GRAPH_API_BASE"), "/"),
		GraphVersion:    v.Text("GRAPH_API_VERSION"),
		CAPIAccessToken: v.Text("CAPI_ACCESS_TOKEN"),
	}
	if err := v.Err(); err != nil {
		return Config{}, err
	}
	var err error
	if cfg.Forward, err = forward.FromValues(v); err != nil {
		return Config{}, err
	}
	if cfg.Forward.Replicas, err = jsstream.Replicas(v); err != nil {
		return Config{}, err
	}
	if cfg.Notify, err = notify.FromValues(v, false); err != nil {
		return Config{}, err
	}
	cfg.Notify.Replicas = cfg.Forward.Replicas
	if err := cfg.Intake.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

// Validate reports the first inconsistent setting, by name.
func (c Config) Validate() error {
	switch {
	case c.Intake.Enabled() && c.NATSURL == "":
		return errors.New("config: INTAKE_TOKEN needs NATS_URL (the intake publishes conversions to JetStream)")
	case 2*c.Intake.AckTimeout >= admin.WriteTimeout:
		return errors.New("config: INTAKE_ACK_TIMEOUT must stay below half the admin listener's write timeout (1m): the body's read and then the acks may each take it, and the 202 must still be written")
	case c.AutoEvents.On && c.NATSURL == "":
		return errors.New("config: AUTOMATIC_EVENTS=on needs NATS_URL (automatic events are published as conversions)")
	case c.Forward.Enabled() && c.NATSURL == "":
		return errors.New("config: FORWARD_URLS needs NATS_URL (forwarded bodies wait in JetStream stream FORWARD)")
	case c.Notify.Enabled() && c.NATSURL == "":
		return errors.New("config: NOTIFY_URLS needs NATS_URL (notifications wait in JetStream stream NOTIFY)")
	}
	return nil
}

// NeedsNATS reports whether a service that publishes to JetStream is on.
func (c Config) NeedsNATS() bool {
	return c.Intake.Enabled() || c.Forward.Enabled() || c.AutoEvents.On || c.Notify.Enabled()
}

// ParseIngest reads the ingest binary's configuration from args (flags)
// and getenv: the receiver's and the services'. Each flag's default is its
// environment variable, so flags win; secrets come from the environment
// only. It returns an error wrapping flag.ErrHelp for -h (print
// PrintIngestUsage then), and one naming a missing or malformed setting,
// never its value.
func ParseIngest(args []string, getenv func(string) string) (ingest.Config, Config, error) {
	v, err := settings.Parse("ingest", args, getenv, IngestSettings())
	if err != nil {
		return ingest.Config{}, Config{}, err
	}
	in, err := ingest.ConfigFrom(v)
	if err != nil {
		return ingest.Config{}, Config{}, err
	}
	svc, err := ConfigFrom(v)
	return in, svc, err
}

// PrintIngestUsage writes the ingest binary's --help text.
func PrintIngestUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: ingest [flags]

Receives Meta webhooks (Messenger, Instagram, WhatsApp Cloud and On-Premises),
verifies them and stores the ad-click context of each conversation in Redis;
its admin listener serves the metrics, the admin API, the intake and the
console.

Every setting is an environment variable; most also have a flag, which wins.
Secrets are read from the environment only, so that they never show in ps.

`)
	settings.PrintUsage(w, IngestSettings())
}
