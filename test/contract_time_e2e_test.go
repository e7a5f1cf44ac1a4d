package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Meta's contract over time (issue 20), end to end with the real ingest and
// sender binaries, redis-server, JetStream and the fake Graph API.

const (
	ctWABA     = "102290129340398"
	ctOldBSUID = "US.13491208655302741918"
	ctNewBSUID = "US.88810072256034411112"
	ctNewPhone = "16315559876"
	// The clicks of the fixtures whatsapp_cloud_username_bsuid_only.json and
	// whatsapp_cloud_phone_and_bsuid.json.
	ctBSUIDOnlyClid = "ARAbsuidOnlyClickId-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-01234567"
	ctPhoneClid     = "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a"
)

// publishConv publishes a WhatsApp LeadSubmitted conversion of user at
// business, with event id r.run-id.
func publishConv(t *testing.T, r *faultRig, id, business, user string) string {
	t.Helper()
	id = r.run + "-" + id
	msg := fmt.Sprintf(`{"event_id":%q,"event_name":"LeadSubmitted","event_time":%d,"channel":"whatsapp","business_id":%q,"user_id":%q}`,
		id, time.Now().Unix(), business, user)
	if err := r.publish("conversions.whatsapp", id, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	return id
}

// sentEvents waits until the fake Graph API has every one of ids and returns
// the raw event of each.
func sentEvents(t *testing.T, r *faultRig, ids ...string) map[string]string {
	t.Helper()
	sent := map[string]string{}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, ev := range r.graph.Events() {
			sent[ev.EventID] = string(ev.Raw)
		}
		var missing []string
		for _, id := range ids {
			if _, ok := sent[id]; !ok {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return sent
		}
		if time.Now().After(deadline) {
			dead, err := r.deadLetters(context.Background())
			t.Fatalf("not at the fake Graph API within 60s: %v (dead letters %+v, %v)", missing, dead, err)
		}
	}
}

// TestIDChangeE2E: a BSUID-only click, then user_changed_user_id, then a
// conversion naming the new BSUID reaches Meta with the original ctwa_clid;
// the same for user_changed_number and a conversion naming the new phone (or
// the BSUID the phone change regenerated). Neither binary prints an id.
func TestIDChangeE2E(t *testing.T) {
	r := newFaultRig(t, faultOptions{})
	// The phone conversation gets BSUIDs of its own, so that the two
	// scenarios do not share a key.
	phoneIDs := strings.NewReplacer(ctOldBSUID, "US.55500000000000000001", ctNewBSUID, "US.55500000000000000002")
	steps := []struct {
		name string
		body []byte
	}{
		{"BSUID-only click", webhookFixture(t, "whatsapp_cloud_username_bsuid_only.json")},
		{"user_changed_user_id", webhookFixture(t, "whatsapp_system_user_changed_user_id.json")},
		{"phone click", []byte(phoneIDs.Replace(string(webhookFixture(t, "whatsapp_cloud_phone_and_bsuid.json"))))},
		{"user_changed_number", []byte(phoneIDs.Replace(string(webhookFixture(t, "whatsapp_system_user_changed_number.json"))))},
	}
	for _, s := range steps {
		if code := r.post(s.body); code != http.StatusOK {
			t.Fatalf("POST %s = %d; want 200", s.name, code)
		}
	}
	tests := []struct{ id, business, user, clid string }{
		{"new-bsuid", ctWABA, ctNewBSUID, ctBSUIDOnlyClid},
		{"new-bsuid-by-phone-number-id", "106540352242922", ctNewBSUID, ctBSUIDOnlyClid},
		{"new-phone", ctWABA, ctNewPhone, ctPhoneClid},
		{"regenerated-bsuid", ctWABA, "US.55500000000000000002", ctPhoneClid},
	}
	var ids []string
	for _, tt := range tests {
		ids = append(ids, publishConv(t, r, tt.id, tt.business, tt.user))
	}
	sent := sentEvents(t, r, ids...)
	for i, tt := range tests {
		if !strings.Contains(sent[ids[i]], `"ctwa_clid":"`+tt.clid+`"`) {
			t.Errorf("%s: sent %s; want the original ctwa_clid %s", tt.id, sent[ids[i]], tt.clid)
		}
	}
	metrics := r.scrape(t)
	for _, typ := range []string{"user_changed_user_id", "user_changed_number"} {
		if want := `ingest_id_changes_total{outcome="linked",type="` + typ + `"} 1`; !strings.Contains(metrics, want) {
			t.Errorf("ingest metrics lack %s", want)
		}
	}
	for name, out := range map[string]string{"ingest": r.ingP.Output(), "sender": r.currentSender().Output()} {
		for _, id := range []string{ctOldBSUID, ctNewBSUID, ctNewPhone, "16315551234", "US.55500000000000000002"} {
			if strings.Contains(out, id) {
				t.Errorf("%s output contains a user id", name)
			}
		}
	}
}

// scrape returns ingest's /metrics.
func (r *faultRig) scrape(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+faultAdminToken)
	resp, err := r.httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waClick is a Cloud API delivery of one click of phone at waba at ts
// (clid "" for a referral without one), shaped like the fixtures.
func waClick(waba, phone, clid string, ts int64) []byte {
	clidField := ""
	if clid != "" {
		clidField = fmt.Sprintf(`,"ctwa_clid":%q`, clid)
	}
	return fmt.Appendf(nil, `{"object":"whatsapp_business_account","entry":[{"id":%q,"changes":[{"field":"messages","value":{
		"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"1065%s"},
		"contacts":[{"profile":{"name":"Kerry"},"wa_id":%q}],
		"messages":[{"from":%q,"id":"wamid.%d","timestamp":"%d","type":"text","text":{"body":"Hi"},
		"referral":{"source_url":"https://fb.me/3cr4Wqqkv","source_id":"120212345678901234","source_type":"ad"%s}}]}}]}]}`,
		waba, waba[4:], phone, phone, ts, ts, clidField)
}

// TestAttributionPolicyE2E: two businesses side by side, one first touch
// (registry attribution: first_touch), one last touch (the default); the
// same two clicks for each report the first and the latest click.
func TestAttributionPolicyE2E(t *testing.T) {
	r := newFaultRig(t, faultOptions{})
	const first, last = "104222339999101", "104222339999102"
	for id, body := range map[string]string{
		first: `{"channel":"whatsapp","dataset_id":"5550101","attribution":"first_touch"}`,
		last:  `{"channel":"whatsapp","dataset_id":"5550102"}`,
	} {
		req, _ := http.NewRequest(http.MethodPut, r.admin+"/v1/businesses/"+id, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+faultAdminToken)
		resp, err := r.httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s = %d %s; want 201", id, resp.StatusCode, out)
		}
	}
	now := time.Now().Unix()
	for _, waba := range []string{first, last} {
		for i, clid := range []string{"ARAfirstClick" + waba, "ARAsecondClick" + waba} {
			if code := r.post(waClick(waba, "4915000000001", clid, now-3600+int64(i)*600)); code != http.StatusOK {
				t.Fatalf("POST click %d of %s = %d", i, waba, code)
			}
		}
	}
	idFirst := publishConv(t, r, "first-touch", first, "4915000000001")
	idLast := publishConv(t, r, "last-touch", last, "4915000000001")
	sent := sentEvents(t, r, idFirst, idLast)
	if !strings.Contains(sent[idFirst], `"ctwa_clid":"ARAfirstClick`+first+`"`) {
		t.Errorf("first-touch business sent %s; want its first click", sent[idFirst])
	}
	if !strings.Contains(sent[idLast], `"ctwa_clid":"ARAsecondClick`+last+`"`) {
		t.Errorf("last-touch business sent %s; want its latest click", sent[idLast])
	}
}

// TestNoClickIDE2E: a referral from an ad in WhatsApp Status carries no
// ctwa_clid; its conversion ends as dead letter no_click_id at once, not
// after CONTEXT_WAIT (60 s in the rig).
func TestNoClickIDE2E(t *testing.T) {
	r := newFaultRig(t, faultOptions{})
	if code := r.post(webhookFixture(t, "whatsapp_cloud_status_ad_no_clid.json")); code != http.StatusOK {
		t.Fatalf("POST Status-ad referral = %d; want 200", code)
	}
	start := time.Now()
	id := publishConv(t, r, "status-ad", ctWABA, "4915123456789")
	var dead []faultDead
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if dead, err = r.deadLetters(context.Background()); err == nil && len(dead) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter within 20s; last read: %d letters, error %v", len(dead), err)
		}
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("dead-lettered after %v; want well within CONTEXT_WAIT (60s)", took)
	}
	if len(dead) != 1 || dead[0].EventID != id || dead[0].Reason != "no_click_id" || dead[0].Subject != "dlq.no_click_id" {
		t.Errorf("dead letters = %+v; want %s as no_click_id", dead, id)
	}
	if n := len(r.graph.Events()); n != 0 {
		t.Errorf("%d events at the fake Graph API; want none", n)
	}
}
