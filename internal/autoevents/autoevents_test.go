package autoevents

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ctmpipe/ctmpipe/pkg/conversion"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

const (
	testWABA = "102290129340398"
	testClid = "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a"
)

// fixtureEvents parses testdata/name and returns its automatic events.
func fixtureEvents(t *testing.T, name string) []webhook.AutomaticEvent {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	pl, err := webhook.Parse(body)
	if err != nil || len(pl.AutomaticEvents) == 0 {
		t.Fatalf("Parse(%s) = %+v, %v; want automatic events", name, pl, err)
	}
	return pl.AutomaticEvents
}

func TestConvertFixtures(t *testing.T) {
	tests := []struct {
		file string
		want conversion.Conversion
	}{
		// The fixture's value 49.5 is, by Meta's rule, 49.5/1000 of a dollar.
		{"whatsapp_automatic_events_purchase.json", conversion.Conversion{
			EventID: EventID("wamid.HBgAUTOPURCHASE", "Purchase"), EventName: "Purchase", EventTime: 1763900500,
			Channel: "whatsapp", BusinessID: testWABA, CtwaClid: testClid,
			CustomData: json.RawMessage(`{"currency":"USD","value":0.0495}`)}},
		{"whatsapp_automatic_events_lead.json", conversion.Conversion{
			EventID: EventID("wamid.HBgAUTOLEAD", "LeadSubmitted"), EventName: "LeadSubmitted", EventTime: 1763900400,
			Channel: "whatsapp", BusinessID: testWABA, CtwaClid: testClid}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".json"), func(t *testing.T) {
			got, err := Convert(fixtureEvents(t, tt.file)[0])
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Convert (-want +got):\n%s", diff)
			}
			// What is published is what the sender reads back.
			data, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			back, err := conversion.Parse(data)
			if err != nil {
				t.Fatalf("conversion.Parse(published message): %v", err)
			}
			if diff := cmp.Diff(got, back); diff != "" {
				t.Errorf("published message parses differently (-built +parsed):\n%s", diff)
			}
		})
	}
}

// The rule of docs/automatic-events.md, pinned: changing it would make every
// redelivery after a release a new event for Meta.
func TestEventID(t *testing.T) {
	const want = "meta-auto:7b979deb6d6d05baa2d813a05b889b59"
	if got := EventID("wamid.HBgAUTOPURCHASE", "Purchase"); got != want {
		t.Errorf("EventID = %q; want %q", got, want)
	}
	if EventID("wamid.X", "Purchase") == EventID("wamid.X", "LeadSubmitted") {
		t.Error("a purchase and a lead in one message share an event_id")
	}
	// No valid event name holds "|", so id and name split unambiguously at
	// the last one.
	for _, n := range conversion.EventNames() {
		if strings.Contains(n, "|") {
			t.Errorf("event name %q holds the separator", n)
		}
	}
}

func TestConvertValueScaled(t *testing.T) {
	tests := []struct {
		custom string
		want   string // custom_data after Convert; "" when invalid
		reason string
	}{
		{`{"currency":"USD","value":25000}`, `{"currency":"USD","value":25}`, ""},
		{`{"currency":"USD","value":"25000"}`, `{"currency":"USD","value":25}`, ""},
		{`{"currency":"BRL","value":1999}`, `{"currency":"BRL","value":1.999}`, ""},
		{`{"currency":"USD","value":2.5e4}`, `{"currency":"USD","value":25}`, ""},
		{`{"currency":"USD","value":0}`, `{"currency":"USD","value":0}`, ""},
		{`{"currency":"USD","value":25000,"order":"<8>"}`, `{"currency":"USD","order":"\u003c8\u003e","value":25}`, ""},
		{`{"currency":"USD","value":"lots"}`, "", "custom_data.value: not a number"},
		{`{"currency":"USD","value":"1/3"}`, "", "custom_data.value: not a number"},
		{`{"currency":"USD","value":true}`, "", "custom_data.value: not a number"},
		{`{"currency":"USD"}`, "", "custom_data.value: Purchase needs a numeric value"},
		{`{"currency":"DOLLARS","value":1}`, "", "custom_data.currency: Purchase needs a three-letter currency code"},
	}
	for _, tt := range tests {
		t.Run(tt.custom, func(t *testing.T) {
			ev := webhook.AutomaticEvent{BusinessID: "W", MessageID: "M", EventName: "Purchase", ClickID: "C",
				CustomData: json.RawMessage(tt.custom)}
			c, err := Convert(ev)
			if tt.reason != "" {
				var ce *conversion.Error
				if !errors.As(err, &ce) || err.Error() != tt.reason {
					t.Fatalf("Convert = %v; want *conversion.Error %q", err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			if string(c.CustomData) != tt.want {
				t.Errorf("custom_data = %s; want %s", c.CustomData, tt.want)
			}
		})
	}
}

func TestConvertRefuses(t *testing.T) {
	base := webhook.AutomaticEvent{BusinessID: "W", MessageID: "M", EventName: "LeadSubmitted", ClickID: testClid}
	tests := []struct {
		name   string
		edit   func(*webhook.AutomaticEvent)
		reason string
	}{
		{"unknown event name", func(e *webhook.AutomaticEvent) { e.EventName = "Subscribe" }, "event_name: not one of"},
		{"millisecond timestamp", func(e *webhook.AutomaticEvent) { e.Time = 1763900400000 }, "event_time: must be unix seconds"},
		{"no click (Status ad)", func(e *webhook.AutomaticEvent) { e.ClickID = "" }, ErrNoClick.Error()},
		{"click with a space", func(e *webhook.AutomaticEvent) { e.ClickID = "a b" }, "ctwa_clid: must be printable ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := base
			tt.edit(&ev)
			_, err := Convert(ev)
			if err == nil || !strings.HasPrefix(err.Error(), tt.reason) {
				t.Fatalf("Convert = %v; want %q", err, tt.reason)
			}
			if strings.Contains(err.Error(), ev.ClickID) && ev.ClickID != "" {
				t.Errorf("error %q names the click id", err)
			}
		})
	}
}

// A user id, should Meta send one, goes along: the phone first, else the
// BSUID.
func TestConvertUserIDs(t *testing.T) {
	ev := webhook.AutomaticEvent{BusinessID: "W", MessageID: "M", EventName: "LeadSubmitted", ClickID: "C", BSUID: "US.abc"}
	if c, err := Convert(ev); err != nil || c.UserID != "US.abc" {
		t.Errorf("Convert(BSUID only) = %q, %v; want the BSUID", c.UserID, err)
	}
	ev.UserID = "16315551234"
	if c, err := Convert(ev); err != nil || c.UserID != "16315551234" {
		t.Errorf("Convert(phone and BSUID) = %q, %v; want the phone", c.UserID, err)
	}
}
