package webhook

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// page wraps Messenger events in a delivery from page "P".
func page(events string) string {
	return `{"object":"page","entry":[{"id":"P","time":1763900000999,"messaging":[` + events + `]}]}`
}

// chg wraps one Messenger event as a change of field in a delivery from
// page "P", whose entry.time is a string as in Meta's 2026 reference pages.
func chg(field, value string) string {
	return `{"object":"page","entry":[{"id":"P","time":"1763900000999","changes":[{"field":"` + field + `","value":` + value + `}]}]}`
}

// cloud wraps a change value in a Cloud API delivery from WABA "W".
func cloud(value string) string {
	return `{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":` + value + `}]}]}`
}

// adRef is a Messenger ad referral.
const adRef = `{"ad_id":"AD","source":"ADS","type":"OPEN_THREAD"}`

// click is a WhatsApp referral from an ad.
const click = `{"ctwa_clid":"CLID","source_id":"AD","source_type":"ad","source_url":"https://fb.me/x"}`

func messengerTouch(user string, t int64) Touch {
	return Touch{Channel: Messenger, BusinessID: "P", UserID: user, AdID: "AD", SourceType: "ADS", Time: t}
}

func waTouch(business, user string, t int64) Touch {
	return Touch{Channel: WhatsApp, BusinessID: business, PhoneNumberID: "PN", UserID: user, ClickID: "CLID",
		AdID: "AD", SourceType: "ad", SourceURL: "https://fb.me/x", Time: t}
}

// bsuidTouch is waTouch("W", user, …) with the other ids of the customer.
func bsuidTouch(user, bsuid, parent, from string) Touch {
	tc := waTouch("W", user, 1763900000)
	tc.BSUID, tc.ParentBSUID, tc.From = bsuid, parent, from
	return tc
}

func TestParseEdges(t *testing.T) {
	ev := func(sender, rest string) string {
		return fmt.Sprintf(`{"sender":{"id":%s},"recipient":{"id":"P"},"timestamp":1763900000000,%s}`, sender, rest)
	}
	msg := func(from, rest string) string {
		return fmt.Sprintf(`{"metadata":{"phone_number_id":"PN"},"messages":[{"from":%s,"timestamp":"1763900000",%s}]}`, from, rest)
	}
	pg := func(touches []Touch, ignored, malformed int) Payload {
		return Payload{Object: objectPage, Channel: Messenger, Touches: touches, Ignored: ignored, Malformed: malformed}
	}
	wa := func(touches []Touch, ignored, malformed int) Payload {
		return Payload{Object: objectWhatsApp, Channel: WhatsApp, Touches: touches, Ignored: ignored, Malformed: malformed}
	}
	tests := []struct {
		name string
		body string
		want Payload
	}{
		// Messenger and Instagram.
		{"message referral", page(ev(`"U"`, `"message":{"text":"hi","referral":`+adRef+`}`)), pg([]Touch{messengerTouch("U", 1763900000)}, 0, 0)},
		{"standby event", `{"object":"page","entry":[{"id":"P","standby":[` + ev(`"U"`, `"referral":`+adRef) + `]}]}`, pg([]Touch{messengerTouch("U", 1763900000)}, 0, 0)},
		{"ADS source without ad_id", page(ev(`"U"`, `"referral":{"source":"ADS","ref":"r"}`)), pg([]Touch{{Channel: Messenger, BusinessID: "P", UserID: "U", SourceType: "ADS", Ref: "r", Time: 1763900000}}, 0, 0)},
		{"ad_id without source", page(ev(`"U"`, `"referral":{"ad_id":"AD"}`)), pg([]Touch{{Channel: Messenger, BusinessID: "P", UserID: "U", AdID: "AD", Time: 1763900000}}, 0, 0)},
		{"shortlink referral is not an ad", page(ev(`"U"`, `"referral":{"ref":"x","source":"SHORTLINK","type":"OPEN_THREAD"}`)), pg(nil, 1, 0)},
		{"echo", page(ev(`"U"`, `"message":{"is_echo":true,"referral":`+adRef+`}`)), pg(nil, 1, 0)},
		{"sent by the page", page(ev(`"P"`, `"referral":`+adRef)), pg(nil, 1, 0)},
		{"reads and deliveries", page(ev(`"U"`, `"read":{"watermark":1}`) + `,` + ev(`"U"`, `"delivery":{"mids":["m"]}`)), pg(nil, 2, 0)},
		{"null referral", page(ev(`"U"`, `"referral":null`)), pg(nil, 1, 0)},
		{"referral not an object", page(ev(`"U"`, `"referral":"ADS"`)), pg(nil, 0, 1)},
		{"ad_id a number", page(ev(`"U"`, `"referral":{"ad_id":120210000000000111,"source":"ADS"}`)), pg(nil, 0, 1)},
		{"source a number", page(ev(`"U"`, `"referral":{"ad_id":"AD","source":7}`)), pg(nil, 0, 1)},
		{"missing sender", page(`{"recipient":{"id":"P"},"referral":` + adRef + `}`), pg(nil, 0, 1)},
		{"sender id a number", page(ev(`6789`, `"referral":`+adRef)), pg(nil, 0, 1)},
		{"empty sender id", page(ev(`""`, `"referral":`+adRef)), pg(nil, 0, 1)},
		{"missing recipient", page(`{"sender":{"id":"U"},"referral":` + adRef + `}`), pg(nil, 0, 1)},
		{"sender not valid UTF-8", page(ev("\"U\xff\"", `"referral":`+adRef)), pg(nil, 0, 1)},
		{"escaped ids are unescaped", page(ev(`"\u0055"`, `"referral":`+adRef)), pg([]Touch{messengerTouch("U", 1763900000)}, 0, 0)},
		{"time falls back to entry.time", page(`{"sender":{"id":"U"},"recipient":{"id":"P"},"referral":` + adRef + `}`), pg([]Touch{messengerTouch("U", 1763900000)}, 0, 0)},
		{"string timestamp falls back to entry.time", page(`{"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":"soon","referral":` + adRef + `}`), pg([]Touch{messengerTouch("U", 1763900000)}, 0, 0)},
		{"exponent timestamp", page(`{"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":1.7639e12,"referral":` + adRef + `}`), pg([]Touch{messengerTouch("U", 1763900000)}, 0, 0)},
		{"seconds stay seconds", page(`{"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":1763900042,"referral":` + adRef + `}`), pg([]Touch{messengerTouch("U", 1763900042)}, 0, 0)},
		{"no usable time at all", `{"object":"page","entry":[{"id":"P","messaging":[{"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":-5,"referral":` + adRef + `}]}]}`, pg([]Touch{messengerTouch("U", 0)}, 0, 0)},
		{"entry not an array", `{"object":"page","entry":{"id":"P"}}`, pg(nil, 0, 1)},
		{"entry element not an object", `{"object":"page","entry":[1,null]}`, pg(nil, 0, 2)},
		{"messaging not an array", `{"object":"page","entry":[{"id":"P","messaging":"x"}]}`, pg(nil, 0, 1)},
		{"event not an object", page(`[],"x"`), pg(nil, 0, 2)},
		{"no entry", `{"object":"page"}`, pg(nil, 0, 0)},
		{"order kept across entries", `{"object":"instagram","entry":[{"id":"P","messaging":[` + ev(`"U1"`, `"referral":`+adRef) + `]},{"id":"P","changes":[{"field":"comments","value":{}}],"messaging":[` + ev(`"U2"`, `"message":{"referral":`+adRef+`}`) + `]}]}`,
			Payload{Object: objectIG, Channel: Instagram, Ignored: 1, Touches: []Touch{
				{Channel: Instagram, BusinessID: "P", UserID: "U1", AdID: "AD", SourceType: "ADS", Time: 1763900000},
				{Channel: Instagram, BusinessID: "P", UserID: "U2", AdID: "AD", SourceType: "ADS", Time: 1763900000}}}},
		{"object not a string", `{"object":1,"entry":[]}`, Payload{}},

		// The entry.changes shape: one event per change, strings or numbers.
		{"change: postback, strings", chg(`messaging_postbacks`, `{"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":"1763900000","postback":{"referral":`+adRef+`}}`), pg([]Touch{messengerTouch("U", 1763900000)}, 0, 0)},
		{"change: referral, milliseconds", chg(`messaging_referrals`, `{"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":"1763900000123","referral":`+adRef+`}`), pg([]Touch{messengerTouch("U", 1763900000)}, 0, 0)},
		{"change: message, numbers", chg(`messages`, `{"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":1763900000123,"message":{"referral":`+adRef+`}}`), pg([]Touch{messengerTouch("U", 1763900000)}, 0, 0)},
		{"change: no timestamp falls back to entry.time", chg(`messages`, `{"sender":{"id":"U"},"recipient":{"id":"P"},"message":{"referral":`+adRef+`}}`), pg([]Touch{messengerTouch("U", 1763900000)}, 0, 0)},
		{"change: echo as a string", chg(`messages`, `{"sender":{"id":"U"},"recipient":{"id":"P"},"message":{"is_echo":"true","referral":`+adRef+`}}`), pg(nil, 1, 0)},
		{"change: other field", chg(`feed`, `{"item":"post"}`), pg(nil, 1, 0)},
		{"change: no field", `{"object":"page","entry":[{"id":"P","changes":[{"value":{}}]}]}`, pg(nil, 1, 0)},
		{"change: value not an object", chg(`messages`, `"x"`), pg(nil, 0, 1)},
		{"change not an object", `{"object":"page","entry":[{"id":"P","changes":[7]}]}`, pg(nil, 0, 1)},
		{"change: user_ref sender cannot be keyed", chg(`messaging_postbacks`, `{"sender":{"user_ref":"R"},"recipient":{"id":"P"},"postback":{"referral":`+adRef+`}}`), pg(nil, 0, 1)},

		// WhatsApp Cloud API.
		{"from null and no contacts", cloud(msg(`null`, `"referral":`+click)), wa(nil, 0, 1)},
		{"from missing, one contact", cloud(`{"metadata":{"phone_number_id":"PN"},"contacts":[{"wa_id":"C"}],"messages":[{"timestamp":"1763900000","referral":` + click + `}]}`), wa([]Touch{waTouch("W", "C", 1763900000)}, 0, 0)},
		{"from missing, same contact twice", cloud(`{"metadata":{"phone_number_id":"PN"},"contacts":[{"wa_id":"C"},{"wa_id":"C"}],"messages":[{"timestamp":"1763900000","referral":` + click + `}]}`), wa([]Touch{waTouch("W", "C", 1763900000)}, 0, 0)},
		{"from missing, two contacts", cloud(`{"metadata":{"phone_number_id":"PN"},"contacts":[{"wa_id":"C"},{"wa_id":"D"}],"messages":[{"timestamp":"1763900000","referral":` + click + `}]}`), wa(nil, 0, 1)},
		{"from a number", cloud(msg(`16315551234`, `"referral":`+click)), wa(nil, 0, 1)},

		// WhatsApp usernames: the BSUID, with or without a phone.
		{"BSUID only, on the message", cloud(`{"metadata":{"phone_number_id":"PN"},"messages":[{"from_user_id":"US.1","timestamp":"1763900000","referral":` + click + `}]}`), wa([]Touch{bsuidTouch("US.1", "US.1", "", "")}, 0, 0)},
		{"BSUID only, on the contact", cloud(`{"metadata":{"phone_number_id":"PN"},"contacts":[{"user_id":"US.1"}],"messages":[{"timestamp":"1763900000","referral":` + click + `}]}`), wa([]Touch{bsuidTouch("US.1", "US.1", "", "")}, 0, 0)},
		{"phone and BSUID", cloud(`{"metadata":{"phone_number_id":"PN"},"contacts":[{"wa_id":"C","user_id":"US.1"}],"messages":[{"from":"C","from_user_id":"US.1","timestamp":"1763900000","referral":` + click + `}]}`), wa([]Touch{bsuidTouch("C", "US.1", "", "")}, 0, 0)},
		{"wa_id preferred, from kept", cloud(`{"metadata":{"phone_number_id":"PN"},"contacts":[{"wa_id":"C9","user_id":"BR.1","parent_user_id":"BR.ENT.2"}],"messages":[{"from":"C","timestamp":"1763900000","referral":` + click + `}]}`), wa([]Touch{bsuidTouch("C9", "BR.1", "BR.ENT.2", "C")}, 0, 0)},
		{"two contacts told apart by BSUID", cloud(`{"metadata":{"phone_number_id":"PN"},"contacts":[{"user_id":"US.1"},{"wa_id":"D","user_id":"US.2"}],"messages":[{"from_user_id":"US.2","timestamp":"1763900000","referral":` + click + `}]}`), wa([]Touch{bsuidTouch("D", "US.2", "", "")}, 0, 0)},
		{"sole contact with another BSUID is not the sender", cloud(`{"metadata":{"phone_number_id":"PN"},"contacts":[{"wa_id":"D","user_id":"US.2"}],"messages":[{"from_user_id":"US.1","timestamp":"1763900000","referral":` + click + `}]}`), wa([]Touch{bsuidTouch("US.1", "US.1", "", "")}, 0, 0)},
		{"message parent preferred", cloud(`{"metadata":{"phone_number_id":"PN"},"contacts":[{"user_id":"US.1","parent_user_id":"US.ENT.9"}],"messages":[{"from_user_id":"US.1","from_parent_user_id":"US.ENT.8","timestamp":"1763900000","referral":` + click + `}]}`), wa([]Touch{bsuidTouch("US.1", "US.1", "US.ENT.8", "")}, 0, 0)},
		{"from_user_id a number", cloud(`{"metadata":{"phone_number_id":"PN"},"messages":[{"from":"F","from_user_id":1,"referral":` + click + `}]}`), wa(nil, 0, 1)},
		{"contact user_id a number is skipped", cloud(`{"metadata":{"phone_number_id":"PN"},"contacts":[{"wa_id":"C","user_id":1}],"messages":[{"from":"F","timestamp":"1763900000","referral":` + click + `}]}`), wa([]Touch{waTouch("W", "F", 1763900000)}, 0, 0)},
		{"source_id without ctwa_clid", cloud(msg(`"F"`, `"referral":{"source_id":"AD","source_type":"post"}`)), wa([]Touch{{Channel: WhatsApp, BusinessID: "W", PhoneNumberID: "PN", UserID: "F", AdID: "AD", SourceType: "post", Time: 1763900000}}, 0, 0)},
		{"referral without click or ad", cloud(msg(`"F"`, `"referral":{"source_type":"post"}`)), wa(nil, 1, 0)},
		{"ctwa_clid a number", cloud(msg(`"F"`, `"referral":{"ctwa_clid":12}`)), wa(nil, 0, 1)},
		{"referral an array", cloud(msg(`"F"`, `"referral":[]`)), wa(nil, 0, 1)},
		{"source_url a number", cloud(msg(`"F"`, `"referral":{"ctwa_clid":"CLID","source_url":1}`)), wa(nil, 0, 1)},
		{"no phone_number_id", cloud(`{"messages":[{"from":"F","timestamp":"1763900000","referral":` + click + `}]}`), wa([]Touch{{Channel: WhatsApp, BusinessID: "W", UserID: "F", ClickID: "CLID", AdID: "AD", SourceType: "ad", SourceURL: "https://fb.me/x", Time: 1763900000}}, 0, 0)},
		{"phone_number_id a number", cloud(`{"metadata":{"phone_number_id":106540352242922},"messages":[{"from":"F","referral":` + click + `}]}`), wa(nil, 0, 1)},
		{"numeric timestamp", cloud(`{"metadata":{"phone_number_id":"PN"},"messages":[{"from":"F","timestamp":1763900000,"referral":` + click + `}]}`), wa([]Touch{waTouch("W", "F", 1763900000)}, 0, 0)},
		{"garbage timestamp keeps the click", cloud(`{"metadata":{"phone_number_id":"PN"},"messages":[{"from":"F","timestamp":"17639x","referral":` + click + `}]}`), wa([]Touch{waTouch("W", "F", 0)}, 0, 0)},
		{"statuses and errors", cloud(`{"statuses":[{"status":"sent"},{"status":"read"}],"errors":[{"code":131051}]}`), wa(nil, 3, 0)},
		{"template status update", cloud(`{"event":"APPROVED","message_template_id":1}`), wa(nil, 1, 0)},
		{"value not an object", cloud(`"x"`), wa(nil, 1, 0)},
		{"messages not an array", cloud(`{"messages":{}}`), wa(nil, 0, 1)},
		{"message not an object", cloud(`{"messages":[7]}`), wa(nil, 0, 1)},
		{"entry id missing", `{"object":"whatsapp_business_account","entry":[{"changes":[{"value":` + msg(`"F"`, `"referral":`+click) + `}]}]}`, wa(nil, 0, 1)},
		{"entry id a number", `{"object":"whatsapp_business_account","entry":[{"id":102290129340398,"changes":[{"value":` + msg(`"F"`, `"referral":`+click) + `}]}]}`, wa(nil, 0, 1)},
		{"changes not an array", `{"object":"whatsapp_business_account","entry":[{"id":"W","changes":{}}]}`, wa(nil, 0, 1)},
		{"batched entries and changes", `{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"value":` + msg(`"F1"`, `"referral":`+click) + `},{"value":` + msg(`"F2"`, `"text":{"body":"x"}`) + `}]},{"id":"V","changes":[{"value":` + msg(`"F3"`, `"referral":`+click) + `}]}]}`,
			wa([]Touch{waTouch("W", "F1", 1763900000), waTouch("V", "F3", 1763900000)}, 1, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse(%s) error %v", tt.body, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%s) mismatch (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

func TestParseOnPremEdges(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		wabaID string
		want   Payload
	}{
		{"statuses only", `{"statuses":[{"id":"x","status":"read"}]}`, "W", Payload{Ignored: 1}},
		{"nothing at all", `{}`, "W", Payload{Ignored: 1}},
		{"sole contact stands in for from", `{"contacts":[{"wa_id":"C"}],"messages":[{"timestamp":"1763900000","referral":` + click + `}]}`, "W",
			Payload{Touches: []Touch{{Channel: WhatsApp, BusinessID: "W", UserID: "C", ClickID: "CLID", AdID: "AD", SourceType: "ad", SourceURL: "https://fb.me/x", Time: 1763900000}}}},
		{"no WABA configured", `{"messages":[{"from":"F","referral":{"ctwa_clid":"CLID"}}]}`, "",
			Payload{Touches: []Touch{{Channel: WhatsApp, UserID: "F", ClickID: "CLID"}}}},
		{"no sender", `{"contacts":[],"messages":[{"referral":{"ctwa_clid":"CLID"}}]}`, "W", Payload{Malformed: 1}},
		{"cloud body on the on-prem path", cloud(`{"messages":[{"from":"F","referral":{"ctwa_clid":"CLID"}}]}`), "W", Payload{Ignored: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.Object, tt.want.Channel = objectOnPrem, WhatsApp
			got, err := ParseOnPrem([]byte(tt.body), tt.wabaID)
			if err != nil {
				t.Fatalf("ParseOnPrem(%s) error %v", tt.body, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseOnPrem(%s) mismatch (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

func TestParseNotJSON(t *testing.T) {
	for _, body := range []string{"", " ", "null", "[]", `[{"object":"page"}]`, `"page"`, "123", "true",
		"{", `{"object":"page"`, `{} {}`, `{"a":}`, "\xff\xfe{}", "<xml/>", "object=page"} {
		if pl, err := Parse([]byte(body)); !errors.Is(err, ErrNotJSON) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrNotJSON", body, pl, err)
		}
		if pl, err := ParseOnPrem([]byte(body), "W"); !errors.Is(err, ErrNotJSON) {
			t.Errorf("ParseOnPrem(%q) = %+v, %v; want ErrNotJSON", body, pl, err)
		}
	}
	if _, err := Parse([]byte(" \n{}\t")); err != nil {
		t.Errorf("Parse(whitespace around {}) = %v; want nil", err)
	}
}
