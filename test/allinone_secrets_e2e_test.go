package test

import (
	"strings"
	"testing"
	"time"
)

// TestAllInOneRefusesPartialSecrets: the real binary with only
// META_APP_SECRET set (a deployment that forgot the other two) does not
// start on development values; it names both missing settings and exits.
func TestAllInOneRefusesPartialSecrets(t *testing.T) {
	p := start(t, "all-in-one", "", []string{
		"META_APP_SECRET=partial-secret-4411", "DATA_DIR=" + t.TempDir(),
		"INGEST_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "NATS_ADDR=127.0.0.1:0",
	})
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("all-in-one with only META_APP_SECRET still running:\n%s", p.Output())
	}
	out := p.Output()
	if code := p.cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("exit status 0; want a refusal")
	}
	for _, want := range []string{"META_VERIFY_TOKEN", "ADMIN_TOKEN"} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal does not name %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "listening") || strings.Contains(out, "partial-secret-4411") {
		t.Errorf("it listened, or printed the secret:\n%s", out)
	}
}
