package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/webhook"
	"github.com/google/go-cmp/cmp"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParseConfig(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	withSecret := env("META_APP_SECRET", " first , second", "NATS_URL", "nats://nats.test:4222")
	tests := []struct {
		name string
		args []string
		env  func(string) string
		want func(c *config) // adjusts the defaults to what is expected
	}{
		{name: "defaults", args: []string{"a.json"}, env: withSecret, want: func(*config) {}},
		{name: "flags after inputs", args: []string{"a.json", "-rate", "50", "-", "-concurrency", "8", "b"}, env: withSecret,
			want: func(c *config) { c.Inputs = []string{"a.json", "-", "b"}; c.Rate = 50; c.Concurrency = 8 }},
		{name: "-- ends flags", args: []string{"-retries", "0", "--", "-x.json"}, env: withSecret,
			want: func(c *config) { c.Inputs = []string{"-x.json"}; c.Retries = 0 }},
		{name: "since", args: []string{"-from-capture", "-since", "90m"}, env: withSecret,
			want: func(c *config) { c.Inputs = nil; c.FromCapture = true; c.From = now.Add(-90 * time.Minute) }},
		{name: "from until", args: []string{"-from-capture", "-from", "2026-11-24T10:00:00Z", "-until", "2026-11-24T11:00:00.5Z", "-nats", "nats://x:1"}, env: withSecret,
			want: func(c *config) {
				c.Inputs = nil
				c.FromCapture = true
				c.NATSURL = "nats://x:1"
				c.From = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
				c.Until = time.Date(2026, 11, 24, 11, 0, 0, 5e8, time.UTC)
			}},
		{name: "dry run needs no secret", args: []string{"-dry-run", "a.json"}, env: env("ONPREM_WABA_ID", "104"),
			want: func(c *config) {
				c.DryRun = true
				c.Secret = nil
				c.OnPremWABAID = "104"
				c.NATSURL = "nats://127.0.0.1:4222"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := config{
				Inputs: []string{"a.json"}, Target: "http://127.0.0.1:8080/webhook", Concurrency: 4, Retries: 3,
				Backoff: time.Second, Timeout: 10 * time.Second, MaxFailures: 10,
				NATSURL: "nats://nats.test:4222", DataDir: "data", Secret: []byte("first"),
			}
			tt.want(&want)
			got, err := parseConfig(tt.args, tt.env, now)
			if err != nil {
				t.Fatalf("parseConfig(%q) error: %v", tt.args, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("parseConfig(%q) (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

func TestParseConfigUsageErrors(t *testing.T) {
	secret := env("META_APP_SECRET", "s")
	tests := []struct {
		args []string
		env  func(string) string
		want string
	}{
		{args: nil, env: secret, want: "nothing to replay"},
		{args: []string{"a.json"}, env: env(), want: "META_APP_SECRET is not set"},
		{args: []string{"a.json"}, env: env("META_APP_SECRET", " , "), want: "META_APP_SECRET is not set"},
		{args: []string{"-nope", "a.json"}, env: secret, want: "flag provided but not defined"},
		{args: []string{"-concurrency", "0", "a.json"}, env: secret, want: "-concurrency"},
		{args: []string{"-rate", "-1", "a.json"}, env: secret, want: "-rate"},
		{args: []string{"-retries", "-1", "a.json"}, env: secret, want: "-retries"},
		{args: []string{"-", "-"}, env: secret, want: "stdin"},
		{args: []string{"-target", "localhost:8080", "a.json"}, env: secret, want: "-target"},
		{args: []string{"-onprem-target", "ftp://x/y", "a.json"}, env: secret, want: "-onprem-target"},
		{args: []string{"-since", "1h", "a.json"}, env: secret, want: "need -from-capture"},
		{args: []string{"-from-capture"}, env: secret, want: "-since DURATION or -from TIME"},
		{args: []string{"-from-capture", "-since", "1h", "-from", "2026-11-24T10:00:00Z"}, env: secret, want: "not both"},
		{args: []string{"-from-capture", "-since", "yesterday"}, env: secret, want: "-since"},
		{args: []string{"-from-capture", "-from", "24/11/2026"}, env: secret, want: "-from"},
		{args: []string{"-from-capture", "-from", "2026-11-24T10:00:00Z", "-until", "2026-11-24T09:00:00Z"}, env: secret, want: "-until must be after"},
	}
	for _, tt := range tests {
		_, err := parseConfig(tt.args, tt.env, time.Now())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseConfig(%q) error = %v; want one containing %q", tt.args, err, tt.want)
		}
	}
	if _, err := parseConfig([]string{"--help"}, secret, time.Now()); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("parseConfig(--help) = %v; want flag.ErrHelp", err)
	}
}

func TestSecretIsNeverPrinted(t *testing.T) {
	var out, errOut bytes.Buffer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusUnauthorized)
	}))
	defer srv.Close()
	code := run(t.Context(), []string{"-target", srv.URL + "/webhook", "-"}, env("META_APP_SECRET", "topsecret-value"),
		strings.NewReader(`{"object":"page","entry":[]}`), &out, &errOut, false)
	if code != exitFailed {
		t.Errorf("exit = %d; want %d", code, exitFailed)
	}
	if strings.Contains(out.String()+errOut.String(), "topsecret") {
		t.Errorf("output shows the secret:\n%s%s", out.String(), errOut.String())
	}
}

func TestRunExitCodes(t *testing.T) {
	const secret = "app-secret"
	var accepted atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if webhook.Verify(body, r.Header.Get(webhook.SignatureHeader), [][]byte{[]byte(secret)}) != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		accepted.Add(1)
	}))
	defer srv.Close()
	good := `{"object":"page","entry":[]}`
	dir := t.TempDir()
	goodFile := filepath.Join(dir, "good.json")
	if err := os.WriteFile(goodFile, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		stdin  string
		want   int
		stderr string
	}{
		{name: "all accepted", args: []string{goodFile, "-"}, stdin: good + "\n" + good, want: exitOK, stderr: "3 bodies"},
		{name: "a bad line", args: []string{"-"}, stdin: good + "\nnope\n", want: exitFailed, stderr: "stdin:2: not JSON"},
		{name: "missing file", args: []string{filepath.Join(dir, "missing.json")}, want: exitUsage, stderr: "missing.json"},
		{name: "bad flag", args: []string{"-bogus"}, want: exitUsage, stderr: "-help"},
		{name: "help", args: []string{"-help"}, want: exitOK},
		{name: "capture unreachable", args: []string{"-from-capture", "-since", "1h", "-nats-url", "nats://127.0.0.1:1"}, want: exitFailed, stderr: "connect to NATS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"-target", srv.URL + "/webhook"}, tt.args...)
			code := run(t.Context(), args, env("META_APP_SECRET", secret), strings.NewReader(tt.stdin), &out, &errOut, false)
			if code != tt.want || !strings.Contains(errOut.String(), tt.stderr) {
				t.Errorf("exit = %d, stderr:\n%s\nwant exit %d and stderr containing %q", code, errOut.String(), tt.want, tt.stderr)
			}
		})
	}
	if n := accepted.Load(); n != 4 {
		t.Errorf("accepted = %d; want 4 (3 + 1)", n)
	}
}

func TestHelpExplainsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	printUsage(&out)
	var c config
	var s, f, u string
	newFlagSet(&c, env(), &s, &f, &u).VisitAll(func(fl *flag.Flag) {
		if !strings.Contains(out.String(), "  -"+fl.Name) || fl.Usage == "" {
			t.Errorf("help does not explain -%s", fl.Name)
		}
	})
	for _, want := range []string{"META_APP_SECRET", "ONPREM_SECRET", "Examples:", "-dry-run", "not a log", "Exit status"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}
