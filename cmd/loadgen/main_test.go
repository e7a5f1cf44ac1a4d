package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/ctmpipe/ctmpipe/internal/sender"
)

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}} {
		var stderr strings.Builder
		if err := run(t.Context(), args, func(string) string { return "" }, io.Discard, &stderr); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("run(%q) = %v; want flag.ErrHelp", args, err)
		}
		if !strings.Contains(stderr.String(), "usage: loadgen ingest|bare|nats|sender|redis-mem") {
			t.Errorf("run(%q) printed %q; want the usage", args, stderr.String())
		}
	}
}

func TestIngestNeedsTheSecret(t *testing.T) {
	err := run(t.Context(), []string{"ingest", "-url", "http://127.0.0.1:1/webhook"}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "META_APP_SECRET") {
		t.Errorf("ingest without META_APP_SECRET: %v; want an error naming it", err)
	}
}

func TestFirstSecret(t *testing.T) {
	tests := map[string]string{"a": "a", "a,b": "a", "": "", ",b": ""}
	for in, want := range tests {
		if got := firstSecret(in); got != want {
			t.Errorf("firstSecret(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestDatasetsFileIsWhatTheSenderReads checks the file the harness hands
// the sender against the sender's own configuration parser.
func TestDatasetsFileIsWhatTheSenderReads(t *testing.T) {
	want := map[string]string{"102290129300001": "900000000000", "109876543200002": "900000000001"}
	path, err := writeDatasets(t.TempDir(), want)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CAPI_DATASETS_FILE": path, "CAPI_ACCESS_TOKEN": "tok",
		"NATS_URL": "nats://127.0.0.1:4222", "REDIS_URL": "redis://127.0.0.1:6379/0"}
	cfg, err := sender.ParseConfig(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("sender.ParseConfig: %v", err)
	}
	for b, d := range want {
		if got := cfg.Datasets[b]; got.DatasetID != d || got.Token != "tok" {
			t.Errorf("business %s: dataset %q token %q; want %q with the default token", b, got.DatasetID, got.Token, d)
		}
	}
}

// -n 0 is refused with a message, not a division by zero.
func TestSenderNeedsConversions(t *testing.T) {
	for _, args := range [][]string{{"sender", "-n", "0"}, {"sender", "-rounds", "0"}} {
		err := run(t.Context(), args, func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "at least 1") {
			t.Errorf("run(%q) = %v; want an error saying at least 1", args, err)
		}
	}
}
