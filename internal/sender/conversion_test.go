package sender

import (
	"bufio"
	"bytes"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

var eventTimeRE = regexp.MustCompile(`"event_time":\d+`)

// fixtureLines returns testdata/conversions.jsonl with every event_time set
// to now: the fixture's times are long past and would be expired.
func fixtureLines(t testing.TB, now time.Time) [][]byte {
	t.Helper()
	f, err := os.Open("testdata/conversions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		l = eventTimeRE.ReplaceAll(l, []byte(`"event_time":`+strconv.FormatInt(now.Unix(), 10)))
		out = append(out, append([]byte(nil), l...))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseFixtures(t *testing.T) {
	lines := fixtureLines(t, time.Now())
	if len(lines) != 10 {
		t.Fatalf("fixture has %d lines; want 10", len(lines))
	}
	wantErr := []string{"", "", "", "", "",
		"event_id: empty",
		"event_name: not one of",
		"channel: must be whatsapp, messenger or instagram",
		"custom_data.currency: Purchase needs a three-letter currency code",
		"not JSON",
	}
	var p fastjson.Parser
	for i, l := range lines {
		_, err := parseConversion(&p, l)
		switch {
		case wantErr[i] == "" && err != nil:
			t.Errorf("line %d: parseConversion = %v; want valid", i+1, err)
		case wantErr[i] != "" && (err == nil || !bytes.HasPrefix([]byte(err.Error()), []byte(wantErr[i]))):
			t.Errorf("line %d: parseConversion error = %v; want prefix %q", i+1, err, wantErr[i])
		}
	}
}

func TestParseConversion(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // error prefix; "" for valid
	}{
		{"minimal", `{"event_id":"e","event_name":"LeadSubmitted","channel":"messenger","business_id":"1","user_id":"2"}`, ""},
		{"array", `[1,2]`, "not a JSON object"},
		{"event_id number", `{"event_id":7,"event_name":"LeadSubmitted","channel":"messenger","business_id":"1","user_id":"2"}`, "event_id: must be a string"},
		{"event_id too long", `{"event_id":"` + string(bytes.Repeat([]byte("x"), 257)) + `","event_name":"LeadSubmitted","channel":"messenger","business_id":"1","user_id":"2"}`, "event_id: too long"},
		{"event_id 256", `{"event_id":"` + string(bytes.Repeat([]byte("x"), 256)) + `","event_name":"LeadSubmitted","channel":"messenger","business_id":"1","user_id":"2"}`, ""},
		{"event_id newline", `{"event_id":"a\nb","event_name":"LeadSubmitted","channel":"messenger","business_id":"1","user_id":"2"}`, "event_id: must not contain control"},
		{"longest BSUID", `{"event_id":"e","event_name":"LeadSubmitted","channel":"whatsapp","business_id":"1","user_id":"BR.` + string(bytes.Repeat([]byte("a"), 128)) + `"}`, ""},
		{"user over 131", `{"event_id":"e","event_name":"LeadSubmitted","channel":"whatsapp","business_id":"1","user_id":"BR.` + string(bytes.Repeat([]byte("a"), 129)) + `"}`, "user_id: too long"},
		{"no user", `{"event_id":"e","event_name":"LeadSubmitted","channel":"messenger","business_id":"1"}`, "user_id: missing"},
		{"empty business", `{"event_id":"e","event_name":"LeadSubmitted","channel":"messenger","business_id":"","user_id":"2"}`, "business_id: empty"},
		{"brace in user", `{"event_id":"e","event_name":"LeadSubmitted","channel":"messenger","business_id":"1","user_id":"a}b"}`, "user_id: must be printable"},
		{"time string", `{"event_id":"e","event_name":"LeadSubmitted","event_time":"1764000000","channel":"messenger","business_id":"1","user_id":"2"}`, "event_time: must be an integer"},
		{"time fraction", `{"event_id":"e","event_name":"LeadSubmitted","event_time":1764000000.5,"channel":"messenger","business_id":"1","user_id":"2"}`, "event_time: must be an integer"},
		{"time millis", `{"event_id":"e","event_name":"LeadSubmitted","event_time":1764000000000,"channel":"messenger","business_id":"1","user_id":"2"}`, "event_time: must be unix seconds"},
		{"time null", `{"event_id":"e","event_name":"LeadSubmitted","event_time":null,"channel":"messenger","business_id":"1","user_id":"2"}`, ""},
		{"custom_data array", `{"event_id":"e","event_name":"LeadSubmitted","channel":"messenger","business_id":"1","user_id":"2","custom_data":[1]}`, "custom_data: must be a JSON object"},
		{"purchase no custom_data", `{"event_id":"e","event_name":"Purchase","channel":"messenger","business_id":"1","user_id":"2"}`, "custom_data: Purchase needs"},
		{"purchase value string", `{"event_id":"e","event_name":"Purchase","channel":"messenger","business_id":"1","user_id":"2","custom_data":{"currency":"usd","value":"1"}}`, "custom_data.value"},
		{"purchase currency 4", `{"event_id":"e","event_name":"Purchase","channel":"messenger","business_id":"1","user_id":"2","custom_data":{"currency":"USDT","value":1}}`, "custom_data.currency"},
		{"purchase ok", `{"event_id":"e","event_name":"Purchase","channel":"instagram","business_id":"1","user_id":"2","custom_data":{"currency":"BRL","value":0}}`, ""},
		{"dataset_id", `{"event_id":"e","event_name":"ViewContent","channel":"whatsapp","business_id":"1","user_id":"2","dataset_id":"99"}`, ""},
		{"dataset_id number", `{"event_id":"e","event_name":"ViewContent","channel":"whatsapp","business_id":"1","user_id":"2","dataset_id":99}`, "dataset_id: must be a string"},
	}
	var p fastjson.Parser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConversion(&p, []byte(tt.in))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("parseConversion = %v; want valid", err)
				}
				return
			}
			if err == nil || !bytes.HasPrefix([]byte(err.Error()), []byte(tt.want)) {
				t.Fatalf("parseConversion = %v; want error starting %q", err, tt.want)
			}
		})
	}
}

// Errors name fields, never values: they end up in logs and headers.
func TestParseErrorsHoldNoValues(t *testing.T) {
	in := `{"event_id":"e","event_name":"Refund-16315551234","channel":"telegram","business_id":"1","user_id":"16315551234"}`
	var p fastjson.Parser
	_, err := parseConversion(&p, []byte(in))
	if err == nil || bytes.Contains([]byte(err.Error()), []byte("16315551234")) {
		t.Fatalf("parseConversion error = %v; want an error without the values", err)
	}
}

func FuzzParseConversion(f *testing.F) {
	for _, l := range fixtureLines(f, time.Now()) {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p fastjson.Parser
		c, err := parseConversion(&p, data)
		if err == nil && (c.EventID == "" || !eventNames[c.EventName] || c.UserID == "" || c.BusinessID == "") {
			t.Fatalf("accepted an invalid conversion: %+v", c)
		}
	})
}
