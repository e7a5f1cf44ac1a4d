package forward

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/settings"
)

func parse(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	v, err := settings.Parse("test", args, func(k string) string { return env[k] }, Settings())
	if err != nil {
		t.Fatal(err)
	}
	return FromValues(v)
}

func TestFromValuesDefaults(t *testing.T) {
	got, err := parse(t, map[string]string{"FORWARD_URLS": " https://inbox.example/hook , http://bot.example:8080/x "})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		URLs:   []string{"https://inbox.example/hook", "http://bot.example:8080/x"},
		MaxAge: 36 * time.Hour, Concurrency: 8, Timeout: 10 * time.Second,
		RetryMin: time.Second, RetryMax: 10 * time.Minute,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FromValues mismatch (-want +got):\n%s", diff)
	}
	if !got.Enabled() {
		t.Error("Enabled() = false with two URLs")
	}
	off, err := parse(t, nil)
	if err != nil || off.Enabled() {
		t.Errorf("without FORWARD_URLS: %+v, %v; want off, no error", off, err)
	}
}

func TestFromValuesFlags(t *testing.T) {
	got, err := parse(t, map[string]string{"FORWARD_MAX_AGE": "2d"}, "-forward-concurrency=3", "-forward-timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	if got.MaxAge != 48*time.Hour || got.Concurrency != 3 || got.Timeout != 2*time.Second {
		t.Errorf("FromValues = %+v; want max age 48h, concurrency 3, timeout 2s", got)
	}
}

// Errors name the setting and the entry, never the URL: it may hold a
// token.
func TestFromValuesErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"not http", map[string]string{"FORWARD_URLS": "ftp://tok3n@files.example/"}, "FORWARD_URLS entry 1"},
		{"no host", map[string]string{"FORWARD_URLS": "https://a.example/,https:///tok3n"}, "FORWARD_URLS entry 2"},
		{"garbage", map[string]string{"FORWARD_URLS": "::tok3n"}, "FORWARD_URLS entry 1"},
		{"twice", map[string]string{"FORWARD_URLS": "https://a.example/?k=tok3n,https://a.example/?k=tok3n"}, "listed twice"},
		{"retry order", map[string]string{"FORWARD_RETRY_MIN": "1m", "FORWARD_RETRY_MAX": "1s"}, "FORWARD_RETRY_MIN"},
		{"zero concurrency", map[string]string{"FORWARD_CONCURRENCY": "0"}, "FORWARD_CONCURRENCY"},
		{"bad age", map[string]string{"FORWARD_MAX_AGE": "soon"}, "FORWARD_MAX_AGE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("FromValues = %v; want an error naming %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "tok3n") {
				t.Errorf("error %q holds the URL", err)
			}
		})
	}
}

func TestSettingsHaveHelp(t *testing.T) {
	for _, s := range Settings() {
		if s.Help == "" || !strings.HasPrefix(s.Env, "FORWARD_") {
			t.Errorf("setting %+v: want a FORWARD_ variable with help", s)
		}
		if s.Env == "FORWARD_URLS" && s.Flag != "" {
			t.Errorf("FORWARD_URLS has flag -%s; a URL may hold a token, so env only", s.Flag)
		}
	}
	if _, err := settings.Merge(Settings()); err != nil {
		t.Error(err)
	}
}

// Two URLs on one host get distinct labels and consumers; ids are stable.
func TestDestinations(t *testing.T) {
	ds, err := parseDestinations([]string{"https://u:p@inbox.example/a?t=1", "https://inbox.example/b"})
	if err != nil {
		t.Fatal(err)
	}
	if ds[0].host != "inbox.example" || ds[0].label != "inbox.example" || ds[1].label != "inbox.example#2" {
		t.Errorf("hosts/labels = %q %q %q; want inbox.example, inbox.example, inbox.example#2", ds[0].host, ds[0].label, ds[1].label)
	}
	if ds[0].consumer() == ds[1].consumer() {
		t.Error("two URLs share a consumer")
	}
	again, _ := parseDestinations([]string{"https://u:p@inbox.example/a?t=1"})
	if again[0].consumer() != ds[0].consumer() || len(ds[0].id) != 16 {
		t.Errorf("consumer %q then %q; want one stable 16-digit id", ds[0].consumer(), again[0].consumer())
	}
}

// Dead letters use the sender's header names and stream, so that one set
// of DLQ tools reads both.
func TestDeadLetterNamesMatchSender(t *testing.T) {
	pairs := [][2]string{
		{headerReason, sender.HeaderReason}, {headerError, sender.HeaderError},
		{headerSubject, sender.HeaderSubject}, {headerTime, sender.HeaderTime},
		{headerMsgID, sender.HeaderMsgID}, {headerPublished, sender.HeaderPublished},
		{streamDLQ, sender.StreamDLQ}, {subjectDLQ, sender.SubjectDLQ},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("forward uses %q where the sender uses %q", p[0], p[1])
		}
	}
}
