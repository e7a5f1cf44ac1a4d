package test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// WhatsApp usernames end to end (issue 9): a click from a user who shows only
// a BSUID is joined by a conversion naming the BSUID; a click carrying phone
// and BSUID by a conversion naming either; a click whose messages[].from
// differs from wa_id by one naming either number. Real ingest and sender
// binaries, redis-server, JetStream and the fake Graph API.
func TestBSUIDE2E(t *testing.T) {
	r := newFaultRig(t, faultOptions{})
	for _, name := range []string{"whatsapp_cloud_username_bsuid_only.json", "whatsapp_cloud_phone_and_bsuid.json", "whatsapp_cloud_from_differs_from_wa_id.json"} {
		if code := r.post(webhookFixture(t, name)); code != 200 {
			t.Fatalf("POST %s = %d; want 200", name, code)
		}
	}
	const waba = "102290129340398"
	tests := []struct{ id, business, user, clid string }{
		{"bsuid-only", waba, "US.13491208655302741918", "ARAbsuidOnlyClickId-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-01234567"},
		{"both-by-phone", waba, "16315551234", "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a"},
		{"from-differs-by-wa-id", waba, "5511988881234", "ARAfromDiffersClick_0123456789abcdefghij"},
		{"from-differs-by-from", "106540352242922", "551188881234", "ARAfromDiffersClick_0123456789abcdefghij"},
		{"from-differs-by-bsuid", waba, "BR.70012345678901234567", "ARAfromDiffersClick_0123456789abcdefghij"},
	}
	for _, tt := range tests {
		id := r.run + "-" + tt.id
		msg := fmt.Sprintf(`{"event_id":%q,"event_name":"LeadSubmitted","event_time":%d,"channel":"whatsapp","business_id":%q,"user_id":%q}`,
			id, time.Now().Unix(), tt.business, tt.user)
		if err := r.publish("conversions.whatsapp", id, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, "every conversion at the fake Graph API", func() bool {
		return len(r.graph.Events()) >= len(tests)
	})
	sent := map[string]string{}
	for _, ev := range r.graph.Events() {
		sent[ev.EventID] = string(ev.Raw)
	}
	for _, tt := range tests {
		raw, ok := sent[r.run+"-"+tt.id]
		if !ok {
			t.Errorf("%s: not sent", tt.id)
			continue
		}
		if !strings.Contains(raw, `"ctwa_clid":"`+tt.clid+`"`) {
			t.Errorf("%s: sent %s; want ctwa_clid %s", tt.id, raw, tt.clid)
		}
	}
	if n := len(r.graph.Events()); n != len(tests) {
		t.Errorf("%d events at the fake; want %d", n, len(tests))
	}
	for name, out := range map[string]string{"ingest": r.ingP.Output(), "sender": r.currentSender().Output()} {
		if strings.Contains(out, "US.13491208655302741918") || strings.Contains(out, "BR.70012345678901234567") {
			t.Errorf("%s output contains a BSUID", name)
		}
	}
}
