package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOperatorWalkWithCtm is the README's walk with the real binaries, on
// ports the system picks, and ctm alone for the operator's side (no curl):
// a conversion published before its webhook waits CONTEXT_WAIT and becomes
// a dead letter unattributed; ctm dlq list shows it, ctm events show its
// trail; once the webhook arrives, ctm dlq redrive sends it, once, to the
// dry-run file, and ctm events show says sent.
func TestOperatorWalkWithCtm(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	env := []string{
		"META_APP_SECRET=walk-secret", "META_VERIFY_TOKEN=walk-verify", "ADMIN_TOKEN=walk-admin-token",
		"INGEST_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "NATS_ADDR=127.0.0.1:0", "DATA_DIR=" + data,
		"CONTEXT_WAIT=2s", "CONTEXT_RETRY_MIN=100ms", "CONTEXT_RETRY_MAX=500ms",
	}
	w := startWalkthrough(t, dir, env)
	ctm := func(args ...string) string {
		t.Helper()
		p := start(t, "ctm", "", []string{"ADMIN_TOKEN=walk-admin-token"},
			append([]string{"-admin-url", w.admin, "-nats-url", w.nats, "-data-dir", data}, args...)...)
		if code := replayExit(p, time.Minute); code != 0 {
			t.Fatalf("ctm %s: exit %d:\n%s", strings.Join(args, " "), code, p.Output())
		}
		return p.Output()
	}

	// A Messenger conversion of the examples' page and user, published
	// before the webhook that carries its ad click.
	const page, event = "109876543210987", "walk-before-webhook-1"
	convs := filepath.Join(dir, "early.jsonl")
	if err := os.WriteFile(convs, []byte(`{"event_id":"`+event+`","event_name":"Purchase","channel":"messenger","business_id":"`+page+
		`","user_id":"6789012345678901","custom_data":{"currency":"USD","value":9.5}}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := start(t, "publish", "", nil, "-nats-url", w.nats, "-data-dir", data, convs)
	if code := replayExit(pub, time.Minute); code != 0 {
		t.Fatalf("publish: exit %d:\n%s", code, pub.Output())
	}
	var list string
	waitFor(t, time.Minute, "the conversion dead-lettered unattributed", func() bool {
		list = ctm("dlq", "list", "-reason", "unattributed")
		return strings.Contains(list, event)
	})
	if trail := ctm("events", "show", page, event); !strings.Contains(trail, "dead_letter") || !strings.Contains(trail, "unattributed") {
		t.Fatalf("ctm events show before the redrive:\n%s", trail)
	}

	// The webhook arrives; the dead letter goes back and is sent.
	rp := start(t, "replay", "", []string{"META_APP_SECRET=walk-secret"}, "-target", w.ingest+"/webhook", replayExample(t, "webhooks"))
	if code := replayExit(rp, time.Minute); code != 0 {
		t.Fatalf("replay: exit %d:\n%s", code, rp.Output())
	}
	if out := ctm("contexts", "show", "messenger", page, "6789012345678901"); !strings.Contains(out, "120210000000000111") {
		t.Fatalf("ctm contexts show: the example's ad is not there:\n%s", out)
	}
	ctm("dlq", "redrive", "-reason", "unattributed", "-business", page)
	dryRun := filepath.Join(data, "capi-dryrun.jsonl")
	js := walkJS(t, w.nats, data)
	walkIdle(t, js, dryRun, event, 1)
	waitFor(t, time.Minute, "the trail to say sent", func() bool {
		return strings.Contains(ctm("events", "show", page, event), "sent")
	})
	if streams := ctm("streams"); !strings.Contains(streams, "CONVERSIONS") || !strings.Contains(streams, "DLQ") {
		t.Errorf("ctm streams:\n%s", streams)
	}
	for _, personal := range []string{"6789012345678901"} {
		if strings.Contains(w.p.Output(), personal) {
			t.Errorf("all-in-one logs contain personal data %q", personal)
		}
	}
}
