package sender

import (
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/capi"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig(nil, envOf(map[string]string{
		"NATS_URL": "nats://n:4222", "REDIS_URL": "redis://r:6379/0", "CAPI_ACCESS_TOKEN": "tok",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	if cfg.ContextWait != want.ContextWait || cfg.BatchSize != 1000 || cfg.SendLease != 2*time.Minute ||
		cfg.SentTTL != 8*24*time.Hour || !slices.Equal(cfg.RequireReferral, []string{"messenger"}) || cfg.GraphVersion != capi.DefaultVersion ||
		cfg.GraphBase != "https://graph.facebook.com" || cfg.MetricsAddr != "127.0.0.1:9090" || cfg.AccessToken != "tok" || cfg.StreamReplicas != 1 {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

func TestParseConfigFlagsWin(t *testing.T) {
	cfg, err := ParseConfig([]string{"-batch-size", "50", "-context-wait", "2m", "-require-referral=false", "-sent-ttl", "9d", "-stream-replicas=3"},
		envOf(map[string]string{"NATS_URL": "n", "REDIS_URL": "r", "CAPI_ACCESS_TOKEN": "t", "BATCH_SIZE": "10", "STREAM_REPLICAS": "5"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BatchSize != 50 || cfg.ContextWait != 2*time.Minute || cfg.RequireReferral != nil || cfg.SentTTL != 9*24*time.Hour || cfg.StreamReplicas != 3 {
		t.Errorf("flags did not win: %+v", cfg)
	}
}

func TestParseRequireReferral(t *testing.T) {
	both := []string{"messenger", "instagram"}
	tests := []struct {
		in   string
		want []string
	}{
		{"", []string{"messenger"}}, // unset: the default
		{"messenger", []string{"messenger"}},
		{"instagram", []string{"instagram"}},
		{" Instagram , messenger ", []string{"instagram", "messenger"}},
		{"messenger,messenger", []string{"messenger"}},
		{"none", nil},
		{"true", both}, // the old boolean: both channels, as before
		{"on", both},
		{"false", nil},
		{"off", nil},
	}
	for _, tt := range tests {
		cfg, err := ParseConfig(nil, envOf(map[string]string{"NATS_URL": "n", "REDIS_URL": "r", "CAPI_ACCESS_TOKEN": "t",
			"REQUIRE_REFERRAL": tt.in}))
		if err != nil || !slices.Equal(cfg.RequireReferral, tt.want) {
			t.Errorf("REQUIRE_REFERRAL=%q: %v, %v; want %v", tt.in, cfg.RequireReferral, err, tt.want)
		}
		for _, ch := range []string{"whatsapp", "messenger", "instagram"} {
			if got := cfg.referralRequired(ch); got != slices.Contains(tt.want, ch) {
				t.Errorf("REQUIRE_REFERRAL=%q: referralRequired(%s) = %v", tt.in, ch, got)
			}
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	base := map[string]string{"NATS_URL": "n", "REDIS_URL": "r", "CAPI_ACCESS_TOKEN": "secret-token"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no nats", with("NATS_URL", ""), nil, "NATS_URL is required"},
		{"no redis", with("REDIS_URL", ""), nil, "REDIS_URL is required"},
		{"no token", with("CAPI_ACCESS_TOKEN", ""), nil, "CAPI_ACCESS_TOKEN is required"},
		{"bad duration", with("CONTEXT_WAIT", "soon"), nil, "CONTEXT_WAIT"},
		{"bad referral list", with("REQUIRE_REFERRAL", "maybe"), nil, "REQUIRE_REFERRAL: want a comma list of channels (messenger, instagram) or none"},
		{"referral for whatsapp", with("REQUIRE_REFERRAL", "messenger,whatsapp"), nil, "whatsapp always needs its ad click"},
		{"lease below timeout", with("SEND_LEASE", "10s"), nil, "SEND_LEASE must exceed HTTP_TIMEOUT"},
		{"shutdown below http timeout", with("SHUTDOWN_TIMEOUT", "5s"), nil, "SHUTDOWN_TIMEOUT must be at least HTTP_TIMEOUT"},
		{"too many inflight", with("MAX_INFLIGHT", "20000"), nil, "MAX_INFLIGHT must be between"},
		{"negative linger", with("LINGER", "-1s"), nil, "LINGER: want a duration"},
		{"per business above all", with("MAX_INFLIGHT_PER_BUSINESS", "600"), nil, "MAX_INFLIGHT_PER_BUSINESS must be between 1 and MAX_INFLIGHT"},
		{"long linger", with("LINGER", "1m"), nil, "LINGER must be between"},
		{"tiny queue memory", with("QUEUE_MEMORY", "1KiB"), nil, "QUEUE_MEMORY must be at least"},
		{"short sent ttl", with("SENT_TTL", "2d"), nil, "SENT_TTL"},
		{"batch too big", with("BATCH_SIZE", "20000"), nil, "BATCH_SIZE"},
		{"unknown failpoint", with("CTM_FAILPOINT", "boom"), nil, "CTM_FAILPOINT"},
		{"missing datasets file", with("CAPI_DATASETS_FILE", "/nonexistent/ds.json"), nil, "CAPI_DATASETS_FILE"},
		{"replicas beyond NATS's limit", with("STREAM_REPLICAS", "7"), nil, "STREAM_REPLICAS: want a number from 1 to 5"},
		{"version without .0", with("GRAPH_API_VERSION", "v27"), nil, "GRAPH_API_VERSION: graph api version \"v27\" is not of the form vNN.0"},
		{"version latest", with("GRAPH_API_VERSION", "latest"), nil, "GRAPH_API_VERSION"},
		{"unknown flag", base, []string{"-nope"}, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(tt.args, envOf(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseConfig = %v; want an error naming %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret-token") {
				t.Fatalf("error holds the token: %v", err)
			}
		})
	}
	if _, err := ParseConfig([]string{"--help"}, envOf(base)); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v; want flag.ErrHelp", err)
	}
}

func TestParseConfigDatasetsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ds.json")
	if err := os.WriteFile(path, []byte(`{"111": {"dataset_id": "d1", "access_token_env": "TOKEN_111"}, "222": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NATS_URL": "n", "REDIS_URL": "r", "CAPI_DATASETS_FILE": path, "TOKEN_111": "t1"}
	_, err := ParseConfig(nil, envOf(env))
	if err == nil || !strings.Contains(err.Error(), "business 222: CAPI_ACCESS_TOKEN is not set") {
		t.Fatalf("ParseConfig = %v; want the missing token variable named", err)
	}
	env["CAPI_ACCESS_TOKEN"] = "t0"
	cfg, err := ParseConfig(nil, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Datasets["111"]; got.DatasetID != "d1" || got.Token != "t1" {
		t.Errorf("111 = %+v", got)
	}
	if got := cfg.Datasets["222"]; got.DatasetID != "" || got.Token != "t0" {
		t.Errorf("222 = %+v", got)
	}
}

func TestParseRedriveArgs(t *testing.T) {
	now := time.Date(2025, 11, 24, 12, 0, 0, 0, time.UTC)
	env := envOf(map[string]string{"NATS_URL": "nats://n"})
	c, err := ParseRedriveArgs([]string{"-reason", "unattributed,rejected", "-since", "2h", "-until", "2025-11-24T11:30:00Z", "-limit", "5", "-dry-run"}, env, now)
	if err != nil {
		t.Fatal(err)
	}
	o := c.Options
	if len(o.Reasons) != 2 || !o.From.Equal(now.Add(-2*time.Hour)) || o.Until.Format(time.RFC3339) != "2025-11-24T11:30:00Z" || o.Limit != 5 || !o.DryRun {
		t.Errorf("options = %+v", o)
	}
	for _, args := range [][]string{
		{},
		{"-reason", "bogus"},
		{"-reason", "in_doubt"},
		{"-reason", "expired", "-since", "2h", "-from", "2025-11-24T00:00:00Z"},
		{"-reason", "expired", "-from", "yesterday"},
	} {
		if _, err := ParseRedriveArgs(args, env, now); err == nil {
			t.Errorf("ParseRedriveArgs(%q) = nil error", args)
		}
	}
	if _, err := ParseRedriveArgs([]string{"-reason", "in_doubt", "-force"}, env, now); err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
		t.Errorf("in_doubt with -force and no Redis: %v; want REDIS_URL asked for", err)
	}
	withRedis := envOf(map[string]string{"NATS_URL": "nats://n", "REDIS_URL": "redis://r"})
	if c, err := ParseRedriveArgs([]string{"-reason", "in_doubt", "-force"}, withRedis, now); err != nil || c.RedisURL != "redis://r" {
		t.Errorf("in_doubt with -force: %+v, %v", c, err)
	}
}

func TestBackoffBounds(t *testing.T) {
	bs := newBusinesses(Config{RetryMin: time.Second, RetryMax: 10 * time.Second, PauseInterval: time.Minute})
	for n := 1; n < 20; n++ {
		ceil := min(time.Second<<(n-1), 10*time.Second)
		for range 50 {
			if d := bs.backoff(n); d < time.Second || d > ceil {
				t.Fatalf("backoff(%d) = %v; want in [1s, %v]", n, d, ceil)
			}
		}
	}
}

func TestHeaderValue(t *testing.T) {
	if got := headerValue("a\r\nb\x00c"); got != "a  b c" {
		t.Errorf("headerValue = %q", got)
	}
	long := strings.Repeat("é", 2000)
	if got := headerValue(long); len(got) > maxHeaderValue || !strings.HasPrefix(long, got) {
		t.Errorf("headerValue(long) has %d bytes or broke a rune", len(got))
	}
}

// The proof is keyed with CAPI_APP_SECRET or the entry's own app secret, never
// with META_APP_SECRET (the webhook secrets, a list during a rotation).
func TestParseConfigAppSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ds.json")
	if err := os.WriteFile(path, []byte(`{"111": {"access_token_env": "TOKEN_111", "app_secret_env": "SECRET_111"}, "222": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NATS_URL": "n", "REDIS_URL": "r", "CAPI_DATASETS_FILE": path, "CAPI_ACCESS_TOKEN": "t0",
		"TOKEN_111": "t1", "META_APP_SECRET": "hook-a,hook-b"}
	_, err := ParseConfig(nil, envOf(env))
	if err == nil || !strings.Contains(err.Error(), "business 111: SECRET_111 is not set") {
		t.Fatalf("ParseConfig = %v; want the missing app secret variable named", err)
	}
	env["SECRET_111"] = "app-111"
	cfg, err := ParseConfig(nil, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AppSecret != "" {
		t.Errorf("AppSecret = %q with CAPI_APP_SECRET unset; META_APP_SECRET must not key the proof", cfg.AppSecret)
	}
	env["CAPI_APP_SECRET"] = "app-0"
	if cfg, err = ParseConfig(nil, envOf(env)); err != nil {
		t.Fatal(err)
	}
	got, err := cfg.appSecrets()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"t1": "app-111", "t0": "app-0"}; !maps.Equal(got, want) || cfg.AppSecret != "app-0" {
		t.Errorf("appSecrets = %v, AppSecret %q; want %v and app-0", got, cfg.AppSecret, want)
	}
	// One token with two secrets: one proof would be wrong.
	env["TOKEN_111"] = "t0"
	if _, err := ParseConfig(nil, envOf(env)); err == nil || strings.Contains(err.Error(), "app-") {
		t.Errorf("one token, two secrets: ParseConfig = %v; want an error without the secrets", err)
	}
	// A misspelt field is refused, not ignored.
	if err := os.WriteFile(path, []byte(`{"111": {"app_secret": "x"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConfig(nil, envOf(env)); err == nil || !strings.Contains(err.Error(), "app_secret") {
		t.Errorf("unknown field: ParseConfig = %v; want it named", err)
	}
}

func TestParseConfigPipeline(t *testing.T) {
	cfg, err := ParseConfig([]string{"-linger", "0", "-max-inflight", "64", "-max-inflight-per-business", "2", "-queue-memory", "16MiB"},
		envOf(map[string]string{"NATS_URL": "n", "REDIS_URL": "r", "CAPI_ACCESS_TOKEN": "t"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Linger != 0 || cfg.MaxInflight != 64 || cfg.MaxInflightPerBusiness != 2 || cfg.QueueMemory != 16<<20 {
		t.Errorf("pipeline settings = linger %v, inflight %d/%d, memory %d; want 0, 64/2, 16MiB",
			cfg.Linger, cfg.MaxInflight, cfg.MaxInflightPerBusiness, cfg.QueueMemory)
	}
	if d := DefaultConfig(); d.ShutdownTimeout < d.HTTPTimeout || d.Validate() != nil {
		t.Errorf("defaults: SHUTDOWN_TIMEOUT %v, HTTP_TIMEOUT %v, Validate %v; want shutdown ≥ timeout and valid",
			d.ShutdownTimeout, d.HTTPTimeout, d.Validate())
	}
}

// REGISTRY_KEY is read from the environment only; a malformed one is an
// error naming the setting, never quoting it; with it, CAPI_ACCESS_TOKEN is
// no longer required (tokens may come from the registry).
func TestParseConfigRegistryKey(t *testing.T) {
	base := map[string]string{"NATS_URL": "n", "REDIS_URL": "r"}
	env := maps.Clone(base)
	env["REGISTRY_KEY"] = "k1:not-base64-of-32-bytes"
	if _, err := ParseConfig(nil, envOf(env)); err == nil || !strings.Contains(err.Error(), "REGISTRY_KEY") || strings.Contains(err.Error(), "not-base64") {
		t.Errorf("malformed REGISTRY_KEY: err = %v; want one naming the setting without its value", err)
	}
	env["REGISTRY_KEY"] = "k1:" + strings.Repeat("A", 43) + "="
	cfg, err := ParseConfig(nil, envOf(env))
	if err != nil || cfg.RegistryKey != env["REGISTRY_KEY"] {
		t.Errorf("REGISTRY_KEY without CAPI_ACCESS_TOKEN: %v", err)
	}
	if _, err := ParseConfig([]string{"-registry-key", "x"}, envOf(base)); err == nil {
		t.Error("REGISTRY_KEY has a flag; want env only")
	}
}

// Every missing required setting is named in one error.
func TestParseConfigAllMissingAtOnce(t *testing.T) {
	_, err := ParseConfig(nil, envOf(nil))
	for _, want := range []string{"NATS_URL is required", "REDIS_URL is required", "CAPI_ACCESS_TOKEN is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseConfig(nothing) = %v; want it to say %q", err, want)
		}
	}
}
