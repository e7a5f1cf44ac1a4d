package ingest

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zapcore"

	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// required is the smallest valid environment.
func required() map[string]string {
	return map[string]string{"META_APP_SECRET": "s1", "META_VERIFY_TOKEN": "vt"}
}

func TestParseConfigDefaults(t *testing.T) {
	got, err := ParseConfig(nil, env(required()))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addr:                     ":8080",
		AdminAddr:                "127.0.0.1:8081",
		AppSecrets:               []string{"s1"},
		VerifyToken:              "vt",
		ContextTTL:               7 * 24 * time.Hour,
		BodyLimit:                3 << 20, // Meta: payloads up to 3 MB
		MaxBodyBytesInFlight:     64 << 20,
		MaxConnections:           4096,
		MaxConnectionsPerAddress: 256,
		FirstByteTimeout:         2 * time.Second,
		ResponseDeadline:         4 * time.Second,
		StoreTimeout:             3 * time.Second,
		CaptureMaxAge:            72 * time.Hour,
		CaptureQueue:             4096,
		LogLevel:                 zapcore.InfoLevel,
		ShutdownTimeout:          15 * time.Second,
		StreamReplicas:           1,
		GraphVersion:             capi.DefaultVersion,
		Replicas:                 replicas.Config{Timeout: 500 * time.Millisecond},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseConfig defaults (-want +got):\n%s", diff)
	}
}

func TestParseConfigEnvAndFlags(t *testing.T) {
	e := required()
	for k, v := range map[string]string{
		"INGEST_ADDR": "127.0.0.1:0", "REDIS_URL": "redis://r:6379/1", "META_APP_SECRET": " a , b,,",
		"ADMIN_TOKEN": "adm", "CONTEXT_TTL": "1d12h", "BODY_LIMIT": "512KiB", "ONPREM_SECRET": "op-secret-0123456789",
		"ONPREM_WABA_ID": "123", "CAPTURE": "on", "CAPTURE_MAX_AGE": "3d", "NATS_URL": "nats://n:4222",
		"LOG_LEVEL": "debug", "SHUTDOWN_TIMEOUT": "2s", "STORE_TIMEOUT": "250ms", "CAPTURE_QUEUE": "10",
		"ADMIN_ADDR": "127.0.0.1:0", "MAX_BODY_BYTES_IN_FLIGHT": "8MiB", "MAX_CONNECTIONS": "10", "RESPONSE_DEADLINE": "2s",
		"MAX_CONNECTIONS_PER_ADDRESS": "5", "FIRST_BYTE_TIMEOUT": "1500ms",
		"STREAM_REPLICAS":    "3",
		"REDIS_MIN_REPLICAS": "1", "REDIS_REPLICA_TIMEOUT": "200ms",
	} {
		e[k] = v
	}
	got, err := ParseConfig([]string{"-addr", ":9090", "-context-ttl=48h", "-log-level", "warn"}, env(e))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addr: ":9090", RedisURL: "redis://r:6379/1", AppSecrets: []string{"a", "b"}, VerifyToken: "vt",
		AdminAddr: "127.0.0.1:0", MaxBodyBytesInFlight: 8 << 20, MaxConnections: 10, ResponseDeadline: 2 * time.Second,
		MaxConnectionsPerAddress: 5, FirstByteTimeout: 1500 * time.Millisecond,
		AdminToken: "adm", ContextTTL: 48 * time.Hour, BodyLimit: 512 << 10, StoreTimeout: 250 * time.Millisecond,
		OnPremSecret: "op-secret-0123456789", OnPremWABAID: "123", Capture: true, CaptureMaxAge: 72 * time.Hour, CaptureQueue: 10,
		NATSURL: "nats://n:4222", LogLevel: zapcore.WarnLevel, ShutdownTimeout: 2 * time.Second,
		GraphVersion: capi.DefaultVersion, StreamReplicas: 3,
		Replicas: replicas.Config{Min: 1, Timeout: 200 * time.Millisecond},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseConfig (-want +got):\n%s", diff)
	}

	// A bare boolean flag turns capture on.
	got, err = ParseConfig([]string{"-capture", "-nats-url", "nats://x:4222"}, env(required()))
	if err != nil || !got.Capture {
		t.Errorf("ParseConfig(-capture) = Capture %v, %v; want true, nil", got.Capture, err)
	}
}

func TestParseConfigErrorsNameTheSetting(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string // set on top of required(); "" unsets
		args []string
		want string
	}{
		{"no app secret", map[string]string{"META_APP_SECRET": ""}, nil, "META_APP_SECRET"},
		{"only commas", map[string]string{"META_APP_SECRET": ",,", "META_VERIFY_TOKEN": "vt"}, nil, "META_APP_SECRET"},
		{"no verify token", map[string]string{"META_VERIFY_TOKEN": ""}, nil, "META_VERIFY_TOKEN"},
		{"bad ttl", map[string]string{"CONTEXT_TTL": "seven days"}, nil, "CONTEXT_TTL"},
		{"negative ttl", map[string]string{"CONTEXT_TTL": "-1h"}, nil, "CONTEXT_TTL"},
		{"bad body limit", map[string]string{"BODY_LIMIT": "big"}, nil, "BODY_LIMIT"},
		{"bad capture", map[string]string{"CAPTURE": "maybe"}, nil, "CAPTURE"},
		{"budget under two bodies", map[string]string{"BODY_LIMIT": "3MiB", "MAX_BODY_BYTES_IN_FLIGHT": "5MiB"}, nil, "MAX_BODY_BYTES_IN_FLIGHT"},
		{"no connections", map[string]string{"MAX_CONNECTIONS": "0"}, nil, "MAX_CONNECTIONS"},
		{"zero deadline", map[string]string{"RESPONSE_DEADLINE": "0s"}, nil, "RESPONSE_DEADLINE"},
		{"no connections per address", map[string]string{"MAX_CONNECTIONS_PER_ADDRESS": "0"}, nil, "MAX_CONNECTIONS_PER_ADDRESS"},
		{"zero first-byte timeout", map[string]string{"FIRST_BYTE_TIMEOUT": "0s"}, nil, "FIRST_BYTE_TIMEOUT"},
		{"empty capture flag", nil, []string{"-capture="}, "CAPTURE"},
		{"capture without nats", map[string]string{"CAPTURE": "on"}, nil, "NATS_URL"},
		{"bad log level", map[string]string{"LOG_LEVEL": "loud"}, nil, "LOG_LEVEL"},
		{"onprem secret alone", map[string]string{"ONPREM_SECRET": "x"}, nil, "ONPREM_WABA_ID"},
		{"onprem id alone", map[string]string{"ONPREM_WABA_ID": "1"}, nil, "ONPREM_SECRET"},
		{"short onprem secret", map[string]string{"ONPREM_SECRET": "0123456789abcde", "ONPREM_WABA_ID": "1"}, nil, "ONPREM_SECRET must be at least 16 characters"},
		{"unknown flag", nil, []string{"-nope"}, "nope"},
		{"secret as flag", nil, []string{"-meta-app-secret", "x"}, "meta-app-secret"},
		{"stray argument", nil, []string{"serve"}, "serve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := required()
			for k, v := range tt.env {
				e[k] = v
			}
			_, err := ParseConfig(tt.args, env(e))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseConfig: err = %v; want one naming %s", err, tt.want)
			}
		})
	}
}

// Error messages name settings, never values: a secret mistyped into the
// wrong variable must not end up in a log.
func TestParseConfigErrorsHideValues(t *testing.T) {
	e := required()
	e["CONTEXT_TTL"] = "hunter2-secret"
	_, err := ParseConfig(nil, env(e))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("ParseConfig: err = %v; want an error without the value", err)
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		_, err := ParseConfig([]string{arg}, env(nil))
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("ParseConfig(%s) = %v; want flag.ErrHelp", arg, err)
		}
	}
	var b bytes.Buffer
	PrintUsage(&b)
	for _, s := range Settings() {
		if !strings.Contains(b.String(), s.Env) {
			t.Errorf("usage lacks %s", s.Env)
		}
		if s.Flag != "" && !strings.Contains(b.String(), "-"+s.Flag) {
			t.Errorf("usage lacks -%s", s.Flag)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7d", 7 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"36h", 36 * time.Hour, true},
		{"90s", 90 * time.Second, true},
		{"d", 0, false},
		{"xd", 0, false},
		{"1dx", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// REDIS_MIN_REPLICAS: its wait shares STORE_TIMEOUT with the write, and a
// negative count is refused with the setting's name.
func TestParseConfigReplicas(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // "" = valid
	}{
		{"default", nil, ""},
		{"one", map[string]string{"REDIS_MIN_REPLICAS": "1"}, ""},
		{"negative", map[string]string{"REDIS_MIN_REPLICAS": "-1"}, "REDIS_MIN_REPLICAS"},
		{"zero timeout", map[string]string{"REDIS_MIN_REPLICAS": "1", "REDIS_REPLICA_TIMEOUT": "0"}, "REDIS_REPLICA_TIMEOUT"},
		{"timeout past the store's", map[string]string{"REDIS_MIN_REPLICAS": "1", "REDIS_REPLICA_TIMEOUT": "3s"}, "shorter than STORE_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := required()
			for k, v := range tt.env {
				e[k] = v
			}
			_, err := ParseConfig(nil, env(e))
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("ParseConfig(%v) = %v; want an error naming %q (none if empty)", tt.env, err, tt.want)
			}
		})
	}
}
