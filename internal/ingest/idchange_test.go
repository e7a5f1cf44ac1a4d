package ingest

import (
	"context"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

const (
	fixtureWABA     = "102290129340398"
	fixtureOldBSUID = "US.13491208655302741918"
	fixtureNewBSUID = "US.88810072256034411112"
	fixtureNewPhone = "16315559876"
)

// TestPostIDChangesFollowTheUser: after WhatsApp's system messages, the
// click stored under the old BSUID or phone is found under the new ones;
// each message is answered 200 and counted by type and outcome.
func TestPostIDChangesFollowTheUser(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	idChanges := func(typ, out string) float64 {
		return testutil.ToFloat64(e.srv.idm.vec.WithLabelValues(typ, out))
	}
	// Nothing stored yet: nothing to carry, still 200.
	if rec := e.post(fixture(t, "whatsapp_system_user_changed_user_id.json"), testAppSecret); rec.Code != http.StatusOK {
		t.Fatalf("user_changed_user_id without a click = %d; want 200", rec.Code)
	}
	if got := idChanges(webhook.SystemUserChangedUserID, idNoContext); got != 1 {
		t.Errorf("ingest_id_changes_total{no_context} = %v; want 1", got)
	}
	for _, tt := range []struct {
		click, change, typ string
		newIDs             []string
	}{
		{"whatsapp_cloud_username_bsuid_only.json", "whatsapp_system_user_changed_user_id.json", webhook.SystemUserChangedUserID, []string{fixtureNewBSUID}},
		{"whatsapp_cloud_phone_and_bsuid.json", "whatsapp_system_user_changed_number.json", webhook.SystemUserChangedNumber, []string{fixtureNewPhone, fixtureNewBSUID}},
	} {
		e.mr.FlushAll()
		if rec := e.post(fixture(t, tt.click), testAppSecret); rec.Code != http.StatusOK {
			t.Fatalf("POST %s = %d", tt.click, rec.Code)
		}
		want, err := e.store.Get(t.Context(), attribution.Key{Channel: attribution.WhatsApp, BusinessID: fixtureWABA, UserID: fixtureOldBSUID})
		if err != nil {
			t.Fatal(err)
		}
		stored := e.webhooks(chanWhatsApp, outStored)
		if rec := e.post(fixture(t, tt.change), testAppSecret); rec.Code != http.StatusOK {
			t.Fatalf("POST %s = %d; want 200", tt.change, rec.Code)
		}
		if got := idChanges(tt.typ, idLinked); got != 1 {
			t.Errorf("ingest_id_changes_total{%s,linked} = %v; want 1", tt.typ, got)
		}
		if got := e.webhooks(chanWhatsApp, outStored); got != stored+1 {
			t.Errorf("ingest_webhooks_total{stored} = %v; want %v", got, stored+1)
		}
		for _, id := range tt.newIDs {
			got, err := e.store.Get(t.Context(), attribution.Key{Channel: attribution.WhatsApp, BusinessID: fixtureWABA, UserID: id})
			if err != nil || got.ClickID != want.ClickID {
				t.Errorf("%s: Get(new id) = %q, %v; want the original click", tt.change, got.ClickID, err)
			}
		}
	}
}

// TestPostIDChangeStoreDown: a change that cannot be written is 503, so
// Meta sends it again.
func TestPostIDChangeStoreDown(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	e.mr.Close()
	if rec := e.post(fixture(t, "whatsapp_system_user_changed_number.json"), testAppSecret); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("id change with the store down = %d; want 503", rec.Code)
	}
}

// policyMap is a Policies of fixed answers.
type policyMap map[string]bool

func (p policyMap) FirstTouch(_ context.Context, id string) (bool, error) { return p[id], nil }

// TestPostWebhookFirstTouchPolicy: ingest asks each business's policy when
// it stores a click; a first-touch business keeps its first click, another
// the latest.
func TestPostWebhookFirstTouchPolicy(t *testing.T) {
	store, _ := newMiniStore(t)
	srv, err := New(testConfig(), Deps{Logger: zaptest.NewLogger(t), Store: store, Policies: policyMap{fixtureWABA: true}})
	if err != nil {
		t.Fatal(err)
	}
	first := fixture(t, "whatsapp_cloud_text_with_ctwa_referral.json") // 16315551234 at 1763900000
	later := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"` + fixtureWABA + `","changes":[{"field":"messages","value":{
		"metadata":{"phone_number_id":"106540352242922"},"contacts":[{"wa_id":"16315551234"}],
		"messages":[{"from":"16315551234","timestamp":"1763903600","type":"text","referral":{"source_id":"120200000000000999","source_type":"ad","ctwa_clid":"ARAlaterClick"}}]}}]}]}`)
	for _, body := range [][]byte{first, later} {
		h := http.Header{webhook.SignatureHeader: {webhook.Sign(body, []byte(testAppSecret))}}
		if rec := serve(t, srv.Handler(), http.MethodPost, "/webhook", body, h); rec.Code != http.StatusOK {
			t.Fatalf("POST = %d", rec.Code)
		}
	}
	got, err := store.Get(t.Context(), attribution.Key{Channel: attribution.WhatsApp, BusinessID: fixtureWABA, UserID: "16315551234"})
	if err != nil || got.ClickID == "ARAlaterClick" || !got.FirstTouch {
		t.Errorf("first-touch business holds %q (first_touch %v), %v; want the fixture's first click", got.ClickID, got.FirstTouch, err)
	}
}
