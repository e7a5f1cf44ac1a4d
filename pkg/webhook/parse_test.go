package webhook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// expectation is one entry of testdata/expected.json, the contract shared with
// the other parts of the pipeline.
type expectation struct {
	File    string           `json:"file"`
	Touches []map[string]any `json:"touches"`
}

// counts are what this package adds to expected.json: how each fixture's
// events that are not Touches are counted, and what the Payload says it is.
type counts struct {
	object    string
	channel   Channel
	ignored   int
	malformed int
}

var fixtureCounts = map[string]counts{
	"whatsapp_cloud_text_with_ctwa_referral.json": {object: objectWhatsApp, channel: WhatsApp},
	"whatsapp_cloud_status_delivered.json":        {object: objectWhatsApp, channel: WhatsApp, ignored: 1},
	"whatsapp_cloud_batched_two_messages.json":    {object: objectWhatsApp, channel: WhatsApp, ignored: 1},
	"whatsapp_onprem_text_with_referral.json":     {object: objectOnPrem, channel: WhatsApp},
	"whatsapp_cloud_username_bsuid_only.json":     {object: objectWhatsApp, channel: WhatsApp},
	"whatsapp_cloud_phone_and_bsuid.json":         {object: objectWhatsApp, channel: WhatsApp},
	"whatsapp_cloud_phone_only.json":              {object: objectWhatsApp, channel: WhatsApp},
	"whatsapp_cloud_from_differs_from_wa_id.json": {object: objectWhatsApp, channel: WhatsApp},
	"messenger_message_with_ad_referral.json":     {object: objectPage, channel: Messenger},
	"messenger_messaging_referral_ads.json":       {object: objectPage, channel: Messenger},
	"messenger_postback_with_referral.json":       {object: objectPage, channel: Messenger},
	"messenger_plain_text.json":                   {object: objectPage, channel: Messenger, ignored: 2},
	"instagram_message_with_ad_referral.json":     {object: objectIG, channel: Instagram},
	"instagram_plain_text.json":                   {object: objectIG, channel: Instagram, ignored: 1},
	"messenger_changes_postback_strings.json":     {object: objectPage, channel: Messenger},
	"messenger_changes_referral_strings.json":     {object: objectPage, channel: Messenger, ignored: 2},
	"instagram_changes_message_strings.json":      {object: objectIG, channel: Instagram, ignored: 1},
	"instagram_changes_message_numbers.json":      {object: objectIG, channel: Instagram},
	"edge_empty_entry.json":                       {object: objectWhatsApp, channel: WhatsApp},
	// System messages are IDChanges: see system_test.go.
	"whatsapp_system_user_changed_number.json":  {object: objectWhatsApp, channel: WhatsApp},
	"whatsapp_system_user_changed_user_id.json": {object: objectWhatsApp, channel: WhatsApp},
	"whatsapp_cloud_status_ad_no_clid.json":     {object: objectWhatsApp, channel: WhatsApp},
	// Automatic events are neither Touches nor ignored: see automatic_test.go.
	"whatsapp_automatic_events_purchase.json": {object: objectWhatsApp, channel: WhatsApp},
	"whatsapp_automatic_events_lead.json":     {object: objectWhatsApp, channel: WhatsApp},
	"edge_unknown_object.json":                {object: "user"},
	"edge_missing_ids.json":                   {object: objectWhatsApp, channel: WhatsApp, malformed: 1},
	// No referral at all: the event is understood and has nothing to store.
	"edge_wrong_types.json": {object: objectPage, channel: Messenger, ignored: 1},
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadExpectations(t *testing.T) []expectation {
	t.Helper()
	var exps []expectation
	if err := json.Unmarshal(readFixture(t, "expected.json"), &exps); err != nil {
		t.Fatalf("expected.json: %v", err)
	}
	// Every fixture must have an expectation, so a new one cannot slip by.
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, e := range exps {
		listed[e.File] = true
	}
	for _, f := range files {
		name := filepath.Base(f)
		if name == "expected.json" {
			continue
		}
		if !listed[name] {
			t.Errorf("testdata/%s has no entry in expected.json", name)
		}
		if _, ok := fixtureCounts[name]; !ok {
			t.Errorf("testdata/%s has no entry in fixtureCounts", name)
		}
	}
	return exps
}

// parseFixture routes a fixture to the parser its endpoint would use.
func parseFixture(t *testing.T, name string, wabaID string) Payload {
	t.Helper()
	body := readFixture(t, name)
	var pl Payload
	var err error
	if strings.Contains(name, "onprem") {
		pl, err = ParseOnPrem(body, wabaID)
	} else {
		pl, err = Parse(body)
	}
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return pl
}

func TestParseFixtures(t *testing.T) {
	for _, exp := range loadExpectations(t) {
		t.Run(strings.TrimSuffix(exp.File, ".json"), func(t *testing.T) {
			pl := parseFixture(t, exp.File, "")
			want := fixtureCounts[exp.File]
			if pl.Object != want.object || pl.Channel != want.channel {
				t.Errorf("Object, Channel = %q, %q; want %q, %q", pl.Object, pl.Channel, want.object, want.channel)
			}
			if pl.Ignored != want.ignored || pl.Malformed != want.malformed {
				t.Errorf("Ignored, Malformed = %d, %d; want %d, %d", pl.Ignored, pl.Malformed, want.ignored, want.malformed)
			}
			if len(pl.Touches) != len(exp.Touches) {
				t.Fatalf("got %d touches %+v; want %d", len(pl.Touches), pl.Touches, len(exp.Touches))
			}
			for i, wantTouch := range exp.Touches {
				got := touchFields(t, pl.Touches[i])
				for field, w := range wantTouch {
					if field == "time" {
						if got[field] != w {
							t.Errorf("touch %d: time = %v; want %v", i, got[field], w)
						}
						continue
					}
					// null in expected.json means "empty".
					if w == nil {
						w = ""
					}
					g, _ := got[field].(string)
					if _, known := got[field]; !known && w != "" {
						t.Errorf("touch %d: no field %q in %v", i, field, got)
					}
					if g != w {
						t.Errorf("touch %d: %s = %q; want %q", i, field, g, w)
					}
				}
			}
		})
	}
}

// touchFields returns a Touch as its JSON object, so expected.json's field
// names are checked against the Touch's own JSON names.
func touchFields(t *testing.T, tc Touch) map[string]any {
	t.Helper()
	b, err := json.Marshal(tc)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseFixtureDetails(t *testing.T) {
	// Fields expected.json does not list.
	tests := []struct {
		file string
		want Touch
	}{
		{"whatsapp_cloud_text_with_ctwa_referral.json", Touch{SourceType: "ad", SourceURL: "https://fb.me/3cr4Wqqkv"}},
		{"whatsapp_onprem_text_with_referral.json", Touch{SourceType: "ad", SourceURL: "https://fb.me/AAAAA"}},
		{"messenger_message_with_ad_referral.json", Touch{SourceType: "ADS"}},
		{"messenger_messaging_referral_ads.json", Touch{SourceType: "ADS", Ref: "spring_sale"}},
		{"messenger_postback_with_referral.json", Touch{SourceType: "ADS", Ref: "spring_sale"}},
		{"instagram_message_with_ad_referral.json", Touch{SourceType: "ADS", Ref: "ig_promo"}},
		{"messenger_changes_postback_strings.json", Touch{SourceType: "ADS", Ref: "winter_sale"}},
		{"messenger_changes_referral_strings.json", Touch{SourceType: "ADS", Ref: "winter_sale"}},
		{"instagram_changes_message_strings.json", Touch{SourceType: "ADS", Ref: "ig_winter"}},
		{"instagram_changes_message_numbers.json", Touch{SourceType: "ADS", Ref: "ig_winter"}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".json"), func(t *testing.T) {
			pl := parseFixture(t, tt.file, "")
			if len(pl.Touches) != 1 {
				t.Fatalf("got %d touches; want 1", len(pl.Touches))
			}
			got := pl.Touches[0]
			if got.SourceType != tt.want.SourceType || got.SourceURL != tt.want.SourceURL || got.Ref != tt.want.Ref {
				t.Errorf("SourceType, SourceURL, Ref = %q, %q, %q; want %q, %q, %q",
					got.SourceType, got.SourceURL, got.Ref, tt.want.SourceType, tt.want.SourceURL, tt.want.Ref)
			}
		})
	}
}

func TestParseOnPremConfiguredWABA(t *testing.T) {
	pl := parseFixture(t, "whatsapp_onprem_text_with_referral.json", "102290129340398")
	if len(pl.Touches) != 1 {
		t.Fatalf("got %d touches; want 1", len(pl.Touches))
	}
	if got := pl.Touches[0]; got.BusinessID != "102290129340398" || got.PhoneNumberID != "" || got.UserID != "16315551234" {
		t.Errorf("BusinessID, PhoneNumberID, UserID = %q, %q, %q; want the configured WABA, none, the sender",
			got.BusinessID, got.PhoneNumberID, got.UserID)
	}
}

func TestParseOnPremBodyOnCloudPath(t *testing.T) {
	// An On-Premises delivery posted to the Cloud endpoint has no "object":
	// it is an unknown payload, not a click with no business id.
	pl, err := Parse(readFixture(t, "whatsapp_onprem_text_with_referral.json"))
	if err != nil || pl.Object != "" || pl.Channel != "" || len(pl.Touches) != 0 {
		t.Errorf("Parse(onprem body) = %+v, %v; want an unknown object", pl, err)
	}
}
