package webhook

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.automatic.golden")

// TestParseAutomaticEventsGolden compares the automatic events of each
// automatic_events fixture with testdata/<fixture>.automatic.golden;
// go test ./pkg/webhook -run AutomaticEventsGolden -update rewrites them.
func TestParseAutomaticEventsGolden(t *testing.T) {
	for _, name := range []string{"whatsapp_automatic_events_purchase.json", "whatsapp_automatic_events_lead.json"} {
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			pl := parseFixture(t, name, "")
			if len(pl.AutomaticEvents) != 1 || len(pl.Touches) != 0 || pl.Ignored != 0 || pl.Malformed != 0 {
				t.Fatalf("Parse(%s) = %+v; want one automatic event and nothing else", name, pl)
			}
			got, err := json.MarshalIndent(pl.AutomaticEvents, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", strings.TrimSuffix(name, ".json")+".automatic.golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("automatic events differ from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// automatic wraps events in a Cloud API automatic_events change.
func automatic(events string) string {
	return `{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"automatic_events",` +
		`"value":{"metadata":{"phone_number_id":"PNID"},"automatic_events":[` + events + `]}}]}]}`
}

func TestParseAutomaticEventsEdges(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		want      []AutomaticEvent
		malformed int
		ignored   int
	}{
		{"unknown event name kept", automatic(`{"id":"M","event_name":"AddToCart","timestamp":"17"}`),
			[]AutomaticEvent{{BusinessID: "WABA", PhoneNumberID: "PNID", MessageID: "M", EventName: "AddToCart", Time: 17}}, 0, 0},
		{"no ctwa_clid (Status ad)", automatic(`{"id":"M","event_name":"LeadSubmitted"}`),
			[]AutomaticEvent{{BusinessID: "WABA", PhoneNumberID: "PNID", MessageID: "M", EventName: "LeadSubmitted"}}, 0, 0},
		{"user ids if Meta adds them", automatic(`{"id":"M","event_name":"LeadSubmitted","from":"1555","from_user_id":"US.abc"}`),
			[]AutomaticEvent{{BusinessID: "WABA", PhoneNumberID: "PNID", MessageID: "M", EventName: "LeadSubmitted", UserID: "1555", BSUID: "US.abc"}}, 0, 0},
		{"custom_data in encoding/json form", automatic(`{"id":"M","event_name":"Purchase","custom_data":{ "currency" : "EUR", "value": 25000, "note": "<a>" }}`),
			[]AutomaticEvent{{BusinessID: "WABA", PhoneNumberID: "PNID", MessageID: "M", EventName: "Purchase",
				CustomData: json.RawMessage(`{"currency":"EUR","value":25000,"note":"\u003ca\u003e"}`)}}, 0, 0},
		{"two events", automatic(`{"id":"A","event_name":"LeadSubmitted"},{"id":"B","event_name":"Purchase"}`),
			[]AutomaticEvent{{BusinessID: "WABA", PhoneNumberID: "PNID", MessageID: "A", EventName: "LeadSubmitted"},
				{BusinessID: "WABA", PhoneNumberID: "PNID", MessageID: "B", EventName: "Purchase"}}, 0, 0},
		{"no id", automatic(`{"event_name":"Purchase"}`), nil, 1, 0},
		{"no event_name", automatic(`{"id":"M"}`), nil, 1, 0},
		{"numeric id", automatic(`{"id":7,"event_name":"Purchase"}`), nil, 1, 0},
		{"ctwa_clid not a string", automatic(`{"id":"M","event_name":"Purchase","ctwa_clid":{}}`), nil, 1, 0},
		{"custom_data not an object", automatic(`{"id":"M","event_name":"Purchase","custom_data":[1]}`), nil, 1, 0},
		{"event not an object", automatic(`"M"`), nil, 1, 0},
		{"automatic_events not an array", strings.Replace(automatic(``), `[]`, `{}`, 1), nil, 1, 0},
		{"no events at all", automatic(``), nil, 0, 1},
		{"no WABA id", strings.Replace(automatic(`{"id":"M","event_name":"Purchase"}`), `"id":"WABA",`, ``, 1), nil, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, pl.AutomaticEvents); diff != "" {
				t.Errorf("AutomaticEvents (-want +got):\n%s", diff)
			}
			if pl.Malformed != tt.malformed || pl.Ignored != tt.ignored {
				t.Errorf("Malformed, Ignored = %d, %d; want %d, %d", pl.Malformed, pl.Ignored, tt.malformed, tt.ignored)
			}
		})
	}
}

// An On-Premises delivery has no automatic events: the field is Cloud API
// only, and such a body carries no WABA id to report them under.
func TestParseOnPremIgnoresAutomaticEvents(t *testing.T) {
	pl, err := ParseOnPrem([]byte(`{"automatic_events":[{"id":"M","event_name":"Purchase"}]}`), "W")
	if err != nil || len(pl.AutomaticEvents) != 0 || pl.Ignored != 1 {
		t.Errorf("ParseOnPrem = %+v, %v; want no automatic events, one ignored", pl, err)
	}
}

// The events' strings must not point into the parser's arena, which the next
// Parse reuses.
func TestParseAutomaticEventsCopyOutOfArena(t *testing.T) {
	first := readFixture(t, "whatsapp_automatic_events_purchase.json")
	second := bytes.ReplaceAll(first, []byte("AUTOPURCHASE"), []byte("OTHERPURCHS"))
	second = bytes.ReplaceAll(second, []byte("USD"), []byte("EUR"))
	for range 50 {
		body := bytes.Clone(first)
		got, _ := Parse(body)
		want, _ := Parse(bytes.Clone(first))
		for i := range body {
			body[i] = ' '
		}
		_, _ = Parse(second)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("events changed after parsing a second body (-before +after):\n%s", diff)
		}
	}
}

// Deliveries without automatic events allocate exactly as before; one with
// an event costs a fixed, small number of allocations.
func TestParseAutomaticEventsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	body := readFixture(t, "whatsapp_automatic_events_lead.json")
	// The strings (one allocation) and the events' slice.
	if n := testing.AllocsPerRun(200, func() { _, _ = Parse(body) }); n > 2 {
		t.Errorf("Parse(lead) allocates %v times; want at most 2", n)
	}
}
