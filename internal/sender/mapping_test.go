package sender

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/conversion"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func TestToEventGolden(t *testing.T) {
	at := time.Unix(1764000000, 0)
	tests := []struct {
		name string
		msg  string
		cx   *attribution.Context
	}{
		{
			name: "whatsapp",
			// The message names the phone_number_id; the context resolves it to the WABA id.
			msg: `{"event_id":"order-8812-purchase","event_name":"Purchase","event_time":1764000000,"channel":"whatsapp","business_id":"106540352242922","user_id":"16315551234","custom_data":{"currency":"USD","value":123.45,"order_id":"8812"}}`,
			cx: &attribution.Context{Key: attribution.Key{Channel: "whatsapp", BusinessID: "102290129340398", UserID: "16315551234"},
				ClickID: "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a", AdID: "120200000000000001", FirstSeen: at, LastSeen: at},
		},
		{
			name: "messenger",
			msg:  `{"event_id":"ord-1003-purchase","event_name":"Purchase","event_time":1764000000,"channel":"messenger","business_id":"109876543210987","user_id":"6789012345678901","custom_data":{"currency":"EUR","value":59.9}}`,
			cx: &attribution.Context{Key: attribution.Key{Channel: "messenger", BusinessID: "109876543210987", UserID: "6789012345678901"},
				AdID: "120200000000000002", Ref: "spring", FirstSeen: at, LastSeen: at},
		},
		{
			name: "instagram",
			msg:  `{"event_id":"ord-1004-cart","event_name":"AddToCart","event_time":1764000000,"channel":"instagram","business_id":"17841405555555555","user_id":"1234567890123456","custom_data":{"currency":"BRL","value":10,"content_ids":["sku-9"]}}`,
			cx: &attribution.Context{Key: attribution.Key{Channel: "instagram", BusinessID: "17841405555555555", UserID: "1234567890123456"},
				AdID: "120200000000000003", FirstSeen: at, LastSeen: at},
		},
		{
			// REQUIRE_REFERRAL=false: no context, the message's own ids.
			name: "messenger_no_referral",
			msg:  `{"event_id":"ord-2001-lead","event_name":"LeadSubmitted","event_time":1764000000,"channel":"messenger","business_id":"109876543210987","user_id":"6789012345678901"}`,
		},
		{
			// Limited Data Use goes to Meta with the event.
			name: "whatsapp_ldu",
			msg:  `{"event_id":"ord-3001-review","event_name":"ReviewProvided","event_time":1764000000,"channel":"whatsapp","business_id":"102290129340398","user_id":"US.13491208655302741918","custom_data":{"rating":5},"data_processing_options":["LDU"],"data_processing_options_country":1,"data_processing_options_state":1000}`,
			cx: &attribution.Context{Key: attribution.Key{Channel: "whatsapp", BusinessID: "102290129340398", UserID: "US.13491208655302741918"},
				ClickID: "ARAkLkA8rmlFeiCktEJQ", FirstSeen: at, LastSeen: at},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := conversion.Parse([]byte(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			ev := toEvent(&c, tt.cx, c.EventTime)
			if err := ev.ValidateAt(at); err != nil {
				t.Errorf("mapped event fails capi validation: %v", err)
			}
			got, err := json.MarshalIndent(ev, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "event_"+tt.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("toEvent(%s) =\n%s\nwant\n%s", tt.name, got, want)
			}
		})
	}
}

// The contract's event names are the ones pkg/capi (Meta's side) accepts:
// the two packages keep their lists apart (pkg never imports pkg), so this
// test is what keeps them equal.
func TestEventNamesAgreeWithCAPI(t *testing.T) {
	for _, n := range conversion.EventNames() {
		if !capi.IsMessagingEventName(n) {
			t.Errorf("event_name %s is in the contract but not in pkg/capi", n)
		}
	}
	if n := len(conversion.EventNames()); n != 14 {
		t.Errorf("contract has %d event names; want Meta's 14", n)
	}
}
