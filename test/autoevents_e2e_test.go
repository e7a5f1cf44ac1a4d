package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/nats-io/nats.go/jetstream"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/autoevents"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// autoEventsBody is a WhatsApp automatic_events delivery (Meta's shape, see
// internal/autoevents/testdata) for a Purchase and a LeadSubmitted at ts.
func autoEventsBody(ts int64) []byte {
	return fmt.Appendf(nil, `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"automatic_events","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"automatic_events":[`+
		`{"id":"wamid.E2EPURCHASE","event_name":"Purchase","timestamp":%d,"ctwa_clid":"ARAautoPurchaseClick_0123456789","custom_data":{"currency":"USD","value":49500}},`+
		`{"id":"wamid.E2ELEAD","event_name":"LeadSubmitted","timestamp":%d,"ctwa_clid":"ARAautoLeadClick_0123456789"}]}}]}]}`, ts, ts)
}

// With AUTOMATIC_EVENTS=on, the all-in-one turns Meta's automatic events
// into CAPI events in its dry-run file (Purchase with Meta's value ÷ 1000),
// and a redelivered webhook sends nothing new.
func TestAutomaticEventsE2EDryRun(t *testing.T) {
	dir := t.TempDir()
	env := []string{
		"META_APP_SECRET=auto-secret", "META_VERIFY_TOKEN=auto-verify", "ADMIN_TOKEN=auto-admin", "AUTOMATIC_EVENTS=on",
		"INGEST_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "NATS_ADDR=127.0.0.1:0", "DATA_DIR=" + filepath.Join(dir, "data"),
	}
	w := startWalkthrough(t, dir, env)
	body := autoEventsBody(time.Now().Unix())
	post := func() {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, w.ingest+"/webhook", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, []byte("auto-secret")))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST automatic_events = %d; want 200", resp.StatusCode)
		}
	}
	post()
	js := walkJS(t, w.nats, filepath.Join(dir, "data"))
	dryRun := filepath.Join(dir, "data", "capi-dryrun.jsonl")
	purchase := autoevents.EventID("wamid.E2EPURCHASE", "Purchase")
	lead := autoevents.EventID("wamid.E2ELEAD", "LeadSubmitted")
	walkIdle(t, js, dryRun, purchase, 2)
	walkIdle(t, js, dryRun, lead, 2)
	// Meta redelivers: ingest answers 200 only after JetStream acked the
	// publishes, so once it has, CONVERSIONS holds all it ever will of
	// them. Their event_ids make them duplicates: nothing stored, nothing
	// new to send.
	before := streamLastSeq(t, js, "CONVERSIONS")
	post()
	if after := streamLastSeq(t, js, "CONVERSIONS"); after != before {
		t.Fatalf("the redelivery stored %d new conversions; want none (duplicates)", after-before)
	}
	walkIdle(t, js, dryRun, lead, 2)

	var seen int
	for _, l := range lines(t, dryRun) {
		var req struct {
			Data []struct {
				EventName  string          `json:"event_name"`
				EventID    string          `json:"event_id"`
				UserData   json.RawMessage `json:"user_data"`
				CustomData json.RawMessage `json:"custom_data"`
			} `json:"data"`
		}
		if err := json.Unmarshal(l, &req); err != nil {
			continue
		}
		for _, e := range req.Data {
			switch e.EventID {
			case purchase:
				seen++
				if e.EventName != "Purchase" || !strings.Contains(string(e.UserData), `"ctwa_clid":"ARAautoPurchaseClick_0123456789"`) ||
					!strings.Contains(string(e.UserData), `"whatsapp_business_account_id":"102290129340398"`) ||
					!strings.Contains(string(e.CustomData), `"value":49.5`) || !strings.Contains(string(e.CustomData), `"currency":"USD"`) {
					t.Errorf("Purchase sent as %s %s %s; want Meta's click, the WABA id and value 49.5 USD", e.EventName, e.UserData, e.CustomData)
				}
			case lead:
				seen++
				if e.EventName != "LeadSubmitted" || !strings.Contains(string(e.UserData), `"ctwa_clid":"ARAautoLeadClick_0123456789"`) {
					t.Errorf("LeadSubmitted sent as %s %s", e.EventName, e.UserData)
				}
			}
		}
	}
	if seen != 2 {
		t.Errorf("dry-run file holds %d automatic events; want 2", seen)
	}
}

// streamLastSeq is the last sequence stored in stream name.
func streamLastSeq(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	st, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}
