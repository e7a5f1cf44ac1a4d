package services

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ctmpipe/ctmpipe/internal/forward"
	"github.com/ctmpipe/ctmpipe/internal/ingest"
	"github.com/ctmpipe/ctmpipe/internal/intake"
	"github.com/ctmpipe/ctmpipe/internal/notify"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func required() map[string]string {
	return map[string]string{"META_APP_SECRET": "s1", "META_VERIFY_TOKEN": "vt"}
}

func TestParseIngestDefaults(t *testing.T) {
	in, got, err := ParseIngest(nil, env(required()))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Intake: intake.Config{BodyLimit: 4 << 20, AckTimeout: 10 * time.Second, Concurrency: 4},
		Forward: forward.Config{MaxAge: 36 * time.Hour, Concurrency: 8, Timeout: 10 * time.Second,
			RetryMin: time.Second, RetryMax: 10 * time.Minute, Replicas: 1},
		Notify: notify.Config{MaxAge: 24 * time.Hour, Timeout: 10 * time.Second,
			RetryMin: time.Second, RetryMax: 10 * time.Minute, Replicas: 1},
		GraphBase:    "https://graph.facebook.com",
		GraphVersion: capi.DefaultVersion,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseIngest defaults (-want +got):\n%s", diff)
	}
	if in.Addr != ":8080" || in.VerifyToken != "vt" {
		t.Errorf("receiver's config = %+v; want its defaults", in)
	}
	e := required()
	e["STREAM_REPLICAS"], e["NATS_URL"], e["ADMIN_TOKEN"], e["FORWARD_URLS"] = "3", "nats://n:4222", "adm", "https://inbox.example/hook"
	if _, got, err = ParseIngest(nil, env(e)); err != nil ||
		got.Forward.Replicas != 3 || len(got.Forward.URLs) != 1 || got.NATSURL != "nats://n:4222" || got.AdminToken != "adm" {
		t.Errorf("ParseIngest = %+v, %v; want FORWARD_URLS, STREAM_REPLICAS' 3, NATS_URL and ADMIN_TOKEN", got, err)
	}
}

func TestParseIngestErrorsNameTheSetting(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"intake without nats", map[string]string{"INTAKE_TOKEN": "intake-token-0123456"}, "NATS_URL"},
		{"automatic events without nats", map[string]string{"AUTOMATIC_EVENTS": "on"}, "NATS_URL"},
		{"forwarding without nats", map[string]string{"FORWARD_URLS": "https://inbox.example/hook"}, "NATS_URL"},
		{"intake ack timeout past the write timeout", map[string]string{"INTAKE_ACK_TIMEOUT": "2m"}, "INTAKE_ACK_TIMEOUT"},
		{"short intake token", map[string]string{"INTAKE_TOKEN": "short", "NATS_URL": "nats://n:4222"}, "INTAKE_TOKEN"},
		{"the receiver's own", map[string]string{"META_VERIFY_TOKEN": ""}, "META_VERIFY_TOKEN"},
		{"bad version", map[string]string{"GRAPH_API_VERSION": "v27"}, "GRAPH_API_VERSION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := required()
			for k, v := range tt.env {
				e[k] = v
			}
			if _, _, err := ParseIngest(nil, env(e)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseIngest: err = %v; want one naming %s", err, tt.want)
			}
		})
	}
}

// TestSettingsMerge holds IngestSettings' panic-free merge of the
// receiver's, the intake's, forwarding's and the registry's settings, and
// -help lists every one.
func TestSettingsMerge(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range IngestSettings() {
		if seen[d.Env] {
			t.Errorf("%s listed twice", d.Env)
		}
		seen[d.Env] = true
	}
	for _, k := range []string{"INGEST_ADDR", "INTAKE_TOKEN", "FORWARD_URLS", "AUTOMATIC_EVENTS", "REGISTRY_KEY", "GRAPH_API_BASE", "GRAPH_API_VERSION", "CAPI_ACCESS_TOKEN"} {
		if !seen[k] {
			t.Errorf("IngestSettings() lacks %s", k)
		}
	}
	if _, _, err := ParseIngest([]string{"-h"}, env(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("ParseIngest(-h) = %v; want flag.ErrHelp", err)
	}
	var b strings.Builder
	PrintIngestUsage(&b)
	for _, s := range IngestSettings() {
		if !strings.Contains(b.String(), s.Env) {
			t.Errorf("usage lacks %s", s.Env)
		}
	}
}

// The receiver's Enqueuer contract: forwarding's errors reach it wrapped in
// its own, so that it answers 413 and 503 without knowing forwarding.
func TestEnqueuerErrors(t *testing.T) {
	for _, tt := range []struct{ from, to error }{
		{fmt.Errorf("%w: nats: timeout", forward.ErrEnqueue), ingest.ErrForwardQueue},
		{forward.ErrTooLarge, ingest.ErrForwardTooLarge},
	} {
		got := wrapForwardErr(tt.from)
		if !errors.Is(got, tt.to) || !errors.Is(got, tt.from) {
			t.Errorf("wrapForwardErr(%v) = %v; want it to wrap %v and the original", tt.from, got, tt.to)
		}
	}
}

// NOTIFY_URLS without NOTIFY_SECRET, or without NATS_URL, is refused with
// the setting named and the URL not repeated.
func TestParseIngestNotify(t *testing.T) {
	e := required()
	e["NOTIFY_URLS"] = "https://partner.example/hook?key=s3cr3t"
	_, _, err := ParseIngest(nil, env(e))
	if err == nil || !strings.Contains(err.Error(), "NOTIFY_SECRET") || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("without NOTIFY_SECRET: %v; want NOTIFY_SECRET named", err)
	}
	e["NOTIFY_SECRET"] = "sig"
	if _, _, err = ParseIngest(nil, env(e)); err == nil || !strings.Contains(err.Error(), "NATS_URL") {
		t.Errorf("without NATS_URL: %v; want NATS_URL named", err)
	}
}
