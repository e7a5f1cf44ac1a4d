package replay

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDryRunPrintsTouchesAndSendsNothing(t *testing.T) {
	f := &fakeIngest{}
	cfg := testConfig(startIngest(t, f))
	cfg.Secret = nil // dry-run needs none
	cfg.DryRun = true
	cfg.OnPremWABAID = "104222339999001"
	var out bytes.Buffer
	cfg.Out = &out
	in := strings.Join([]string{
		compact(t, "whatsapp_cloud_text_with_ctwa_referral.json"),
		"not json",
		compact(t, "whatsapp_onprem_text_with_referral.json"),
		compact(t, "whatsapp_cloud_status_delivered.json"),
	}, "\n")

	sum := mustRun(t, cfg, Reader("stdin", strings.NewReader(in)))

	if f.signed+f.badSig != 0 {
		t.Errorf("dry run sent %d requests", f.signed+f.badSig)
	}
	var got []map[string]any
	dec := json.NewDecoder(&out)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("dry-run output is not JSON lines: %v\n%s", err, out.String())
		}
		got = append(got, m)
	}
	want := []map[string]any{
		{"source": "stdin:1", "path": "/webhook", "object": "whatsapp_business_account", "channel": "whatsapp",
			"ignored": 0.0, "malformed": 0.0, "touches": []any{map[string]any{
				"channel": "whatsapp", "business_id": "102290129340398", "phone_number_id": "106540352242922",
				"user_id": "16315551234", "ad_id": "120212345678901234", "time": 1763900000.0,
				"ctwa_clid":   "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a",
				"source_type": "ad", "source_url": "https://fb.me/3cr4Wqqkv"}}},
		{"source": "stdin:2", "error": "not JSON"},
		{"source": "stdin:3", "path": "/webhook/onprem", "object": "onprem", "channel": "whatsapp",
			"ignored": 0.0, "malformed": 0.0, "touches": []any{map[string]any{
				"channel": "whatsapp", "business_id": "104222339999001",
				"user_id": "16315551234", "ad_id": "1234567890", "time": 1763900020.0,
				"ctwa_clid":   "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a",
				"source_type": "ad", "source_url": "https://fb.me/AAAAA"}}},
		{"source": "stdin:4", "path": "/webhook", "object": "whatsapp_business_account", "channel": "whatsapp",
			"ignored": 1.0, "malformed": 0.0, "touches": []any{}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dry-run lines (-want +got):\n%s", diff)
	}
	if sum.Bodies != 4 || sum.OK != 3 || sum.Failed != 1 || !sum.DryRun {
		t.Errorf("summary = %+v; want 4 bodies, 3 ok, 1 failed, dry run", sum)
	}
}

func TestRunNeedsASecretUnlessDryRun(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1/webhook")
	cfg.Secret = nil
	if _, err := Run(t.Context(), cfg, nil); err == nil {
		t.Error("Run without a secret = nil error; want one")
	}
}

func TestSummaryText(t *testing.T) {
	s := newSummary(2, false)
	s.add("a.jsonl:1", outcome{ok: true, status: 200, attempts: 1})
	s.add("a.jsonl:2", outcome{ok: true, status: 200, attempts: 3})
	s.add("a.jsonl:3", outcome{notSent: true, reason: "not JSON"})
	s.add("a.jsonl:4", outcome{status: 401, attempts: 1, reason: "status 401"})
	s.add("a.jsonl:5", outcome{attempts: 4, reason: "no response after 4 attempts: refused"})
	s.Elapsed = 2 * time.Second
	var b strings.Builder
	s.WriteTo(&b)
	want := `replay: 5 bodies in 2s (2.5/s): 2 ok, 3 failed
  status: 200=2 401=1
  not sent (bad input): 1
  no response: 1
  retried: 2
failures (first 2 of 3):
  a.jsonl:3: not JSON
  a.jsonl:4: status 401
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
}

func TestProgress(t *testing.T) {
	s := newSummary(10, false)
	s.add("x:1", outcome{ok: true, status: 200, attempts: 1})
	s.add("x:2", outcome{status: 500, attempts: 1})
	tests := []struct {
		name  string
		tty   bool
		total int
		want  string
	}{
		{name: "bar", tty: true, total: 4, want: "\r[===============>              ] 2/4 "},
		{name: "bar, total unknown", tty: true, total: -1, want: "\r[ <=>                          ] 2/? "},
		{name: "lines", tty: false, total: 4, want: "replay: 2/4 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			p := newProgress(&b, tt.tty, time.Hour, s)
			p.setTotal(tt.total)
			p.draw(false)
			got := b.String()
			if !strings.HasPrefix(got, tt.want) || !strings.Contains(got, "/s ok=1 fail=1") {
				t.Errorf("progress = %q; want it to start %q and show ok=1 fail=1", got, tt.want)
			}
		})
	}
}
