package conversion_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ctmpipe/ctmpipe/pkg/conversion"
)

// msg is a valid LeadSubmitted message with extra raw JSON fields appended
// (",\"field\":value").
func msg(extra string) string {
	return `{"event_id":"e","event_name":"LeadSubmitted","channel":"messenger","business_id":"1","user_id":"2"` + extra + `}`
}

// with returns a valid message whose field key has the raw JSON value v
// (a missing key when v is "").
func with(key, v string) string {
	fields := [][2]string{
		{"event_id", `"e"`}, {"event_name", `"LeadSubmitted"`}, {"channel", `"messenger"`},
		{"business_id", `"1"`}, {"user_id", `"2"`},
	}
	var b strings.Builder
	b.WriteString("{")
	found := false
	for _, f := range fields {
		if f[0] == key {
			found = true
			if v == "" {
				continue
			}
			f[1] = v
		}
		if b.Len() > 1 {
			b.WriteString(",")
		}
		b.WriteString(`"` + f[0] + `":` + f[1])
	}
	if !found && v != "" {
		b.WriteString(`,"` + key + `":` + v)
	}
	b.WriteString("}")
	return b.String()
}

func q(s string) string { return `"` + s + `"` }

func TestParse(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	bsuid := "US." + strings.Repeat("a", 128)
	tests := []struct {
		name string
		in   string
		want string // error text; "" for valid
	}{
		{"minimal", msg(""), ""},
		{"array", `[1,2]`, "not a JSON object"},
		{"not json", `not json`, "not JSON: syntax error at byte 2"},
		{"empty", ``, "not JSON"},

		// Required fields, types and limits.
		{"event_id missing", with("event_id", ""), "event_id: missing"},
		{"event_id number", with("event_id", `7`), "event_id: must be a string"},
		{"event_id empty", with("event_id", `""`), "event_id: empty"},
		{"event_id at limit", with("event_id", q(long(conversion.MaxEventIDLen))), ""},
		{"event_id too long", with("event_id", q(long(conversion.MaxEventIDLen+1))), "event_id: too long"},
		{"event_id newline", with("event_id", `"a\nb"`), "event_id: must not contain control characters"},
		{"event_id slash", with("event_id", `"a/b"`), ""},
		{"event_name missing", with("event_name", ""), "event_name: missing"},
		{"event_name unknown", with("event_name", `"Lead"`), "event_name: not one of Purchase, LeadSubmitted, InitiateCheckout, AddToCart, ViewContent, OrderCreated, OrderShipped, OrderDelivered, OrderCanceled, OrderReturned, CartAbandoned, QualifiedLead, RatingProvided, ReviewProvided"},
		{"event_name lower case", with("event_name", `"purchase"`), "event_name: not one of"},
		{"channel missing", with("channel", ""), "channel: missing"},
		{"channel unknown", with("channel", `"telegram"`), "channel: must be whatsapp, messenger or instagram"},
		{"business_id missing", with("business_id", ""), "business_id: missing"},
		{"business_id empty", with("business_id", `""`), "business_id: empty"},
		{"business_id number", with("business_id", `1`), "business_id: must be a string"},
		{"business_id at limit", with("business_id", q(long(conversion.MaxBusinessIDLen))), ""},
		{"business_id too long", with("business_id", q(long(conversion.MaxBusinessIDLen+1))), "business_id: too long"},
		{"business_id colon", with("business_id", `"a:b"`), "business_id: must be printable ASCII"},
		{"business_id space", with("business_id", `"a b"`), "business_id: must be printable ASCII"},
		{"user_id missing", with("user_id", ""), "user_id: missing"},
		{"user_id bsuid", with("user_id", q(bsuid)), ""},
		{"user_id too long", with("user_id", q(bsuid+"a")), "user_id: too long"},
		{"user_id brace", with("user_id", `"a}b"`), "user_id: must be printable ASCII"},
		{"user_id non-ASCII", with("user_id", `"é"`), "user_id: must be printable ASCII"},
		{"ctwa_clid without user_id", `{"event_id":"e","event_name":"LeadSubmitted","channel":"whatsapp","business_id":"1","ctwa_clid":"ARAk-x_9"}`, ""},
		{"ctwa_clid with user_id", `{"event_id":"e","event_name":"LeadSubmitted","channel":"whatsapp","business_id":"1","user_id":"2","ctwa_clid":"ARAk"}`, ""},
		{"ctwa_clid empty needs user_id", `{"event_id":"e","event_name":"LeadSubmitted","channel":"whatsapp","business_id":"1","ctwa_clid":""}`, "user_id: missing"},
		{"ctwa_clid on messenger", msg(`,"ctwa_clid":"ARAk"`), "ctwa_clid: only on channel whatsapp"},
		{"ctwa_clid number", msg(`,"ctwa_clid":7`), "ctwa_clid: must be a string"},
		{"ctwa_clid too long", `{"event_id":"e","event_name":"LeadSubmitted","channel":"whatsapp","business_id":"1","ctwa_clid":` + q(long(conversion.MaxClickIDLen+1)) + `}`, "ctwa_clid: too long"},
		{"ctwa_clid space", `{"event_id":"e","event_name":"LeadSubmitted","channel":"whatsapp","business_id":"1","ctwa_clid":"a b"}`, "ctwa_clid: must be printable ASCII"},
		{"dataset_id", with("dataset_id", `"99"`), ""},
		{"dataset_id number", with("dataset_id", `99`), "dataset_id: must be a string"},
		{"dataset_id too long", with("dataset_id", q(long(conversion.MaxDatasetIDLen+1))), "dataset_id: too long"},
		{"dataset_id null", with("dataset_id", `null`), ""},

		// event_time.
		{"time", msg(`,"event_time":1764000000`), ""},
		{"time null", msg(`,"event_time":null`), ""},
		{"time string", msg(`,"event_time":"1764000000"`), "event_time: must be an integer (unix seconds)"},
		{"time fraction", msg(`,"event_time":1764000000.5`), "event_time: must be an integer (unix seconds)"},
		{"time zero", msg(`,"event_time":0`), "event_time: must be unix seconds (a positive integer)"},
		{"time negative", msg(`,"event_time":-5`), "event_time: must be unix seconds (a positive integer)"},
		{"time millis", msg(`,"event_time":1764000000000`), "event_time: must be unix seconds (not milliseconds)"},

		// custom_data.
		{"custom_data array", msg(`,"custom_data":[1]`), "custom_data: must be a JSON object"},
		{"custom_data null", msg(`,"custom_data":null`), ""},
		{"purchase no custom_data", with("event_name", `"Purchase"`), "custom_data: Purchase needs currency and value"},
		{"purchase value string", `{"event_id":"e","event_name":"Purchase","channel":"messenger","business_id":"1","user_id":"2","custom_data":{"currency":"usd","value":"1"}}`, "custom_data.value: Purchase needs a numeric value"},
		{"purchase currency 4", `{"event_id":"e","event_name":"Purchase","channel":"messenger","business_id":"1","user_id":"2","custom_data":{"currency":"USDT","value":1}}`, "custom_data.currency: Purchase needs a three-letter currency code"},
		{"purchase ok", `{"event_id":"e","event_name":"Purchase","channel":"instagram","business_id":"1","user_id":"2","custom_data":{"currency":"BRL","value":0}}`, ""},

		// Not JSON, though fastjson would take it: fail at once, never at Meta.
		{"NaN", msg(`,"custom_data":{"value":NaN}`), "not JSON: syntax error at byte"},
		{"Infinity", msg(`,"custom_data":{"value":Infinity}`), "not JSON: syntax error at byte"},
		{"-Infinity", msg(`,"custom_data":{"value":-Infinity}`), "not JSON: syntax error at byte"},
		{"1-2", msg(`,"custom_data":{"value":1-2}`), "not JSON: syntax error at byte"},
		{"leading zero", msg(`,"custom_data":{"value":012}`), "not JSON: syntax error at byte"},
		{"raw tab in string", msg(`,"custom_data":{"note":"a` + "\t" + `b"}`), "not JSON: syntax error at byte"},
		{"raw NUL in string", msg(`,"custom_data":{"note":"a` + "\x00" + `b"}`), "not JSON: syntax error at byte"},
		{"trailing comma", msg(`,"custom_data":{"a":1,}`), "not JSON: syntax error at byte"},
		// Valid JSON, but no float64 holds it: Meta would read infinity.
		{"1e400", msg(`,"custom_data":{"value":1e400}`), "custom_data.value: number too large for a 64-bit float"},
		{"-1E+400 in an array", msg(`,"custom_data":{"contents":[{"id":"a","quantity":-1E+400}]}`), "custom_data.contents[0].quantity: number too large"},
		{"400 digits", msg(`,"custom_data":{"value":1` + strings.Repeat("0", 400) + `}`), "custom_data.value: number too large"},
		{"unknown field 1e400", msg(`,"extra":[1e400]`), "extra[0]: number too large"},
		{"1e308 fits", msg(`,"custom_data":{"value":1e308}`), ""},
		{"1e-400 is zero, not infinite", msg(`,"custom_data":{"value":1e-400}`), ""},
		{"single quotes", `{'event_id':'e'}`, "not JSON: syntax error at byte 2"},
		{"invalid UTF-8", msg(`,"custom_data":{"note":"` + "\xff" + `"}`), "not JSON: invalid UTF-8"},
		{"escaped control is JSON", msg(`,"custom_data":{"note":"a\u0001\"b"}`), ""},

		// Limited Data Use.
		{"ldu", msg(`,"data_processing_options":["LDU"]`), ""},
		{"ldu empty", msg(`,"data_processing_options":[]`), ""},
		{"ldu geolocate", msg(`,"data_processing_options":["LDU"],"data_processing_options_country":0,"data_processing_options_state":0`), ""},
		{"ldu california", msg(`,"data_processing_options":["LDU"],"data_processing_options_country":1,"data_processing_options_state":1000`), ""},
		{"ldu us", msg(`,"data_processing_options":["LDU"],"data_processing_options_country":1,"data_processing_options_state":0`), ""},
		{"ldu lower case", msg(`,"data_processing_options":["ldu"]`), `data_processing_options: must be [] or ["LDU"]`},
		{"ldu twice", msg(`,"data_processing_options":["LDU","LDU"]`), `data_processing_options: must be [] or ["LDU"]`},
		{"ldu string", msg(`,"data_processing_options":"LDU"`), `data_processing_options: must be an array of strings: [] or ["LDU"]`},
		{"ldu number element", msg(`,"data_processing_options":[1]`), `data_processing_options: must be an array of strings`},
		{"country without ldu", msg(`,"data_processing_options_country":1,"data_processing_options_state":1000`), `data_processing_options_country: only with data_processing_options ["LDU"]`},
		{"state without ldu", msg(`,"data_processing_options":[],"data_processing_options_state":0`), `data_processing_options_state: only with data_processing_options ["LDU"]`},
		{"country alone", msg(`,"data_processing_options":["LDU"],"data_processing_options_country":1`), "data_processing_options_state: required with data_processing_options_country"},
		{"state alone", msg(`,"data_processing_options":["LDU"],"data_processing_options_state":0`), "data_processing_options_country: required with data_processing_options_state"},
		{"country 2", msg(`,"data_processing_options":["LDU"],"data_processing_options_country":2,"data_processing_options_state":0`), "data_processing_options_country: must be 0 (Meta geolocates) or 1 (United States)"},
		{"state 1001", msg(`,"data_processing_options":["LDU"],"data_processing_options_country":1,"data_processing_options_state":1001`), "data_processing_options_state: must be 0 (Meta geolocates) or 1000 (California)"},
		{"california outside us", msg(`,"data_processing_options":["LDU"],"data_processing_options_country":0,"data_processing_options_state":1000`), "data_processing_options_state: 1000 (California) needs data_processing_options_country 1"},
		{"country string", msg(`,"data_processing_options":["LDU"],"data_processing_options_country":"1","data_processing_options_state":1000`), "data_processing_options_country: must be an integer"},
		{"state fraction", msg(`,"data_processing_options":["LDU"],"data_processing_options_country":1,"data_processing_options_state":1000.5`), "data_processing_options_state: must be an integer"},

		{"unknown field ignored", msg(`,"note":"x"`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := conversion.Parse([]byte(tt.in))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse = %v; want valid", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("Parse = %v; want error starting %q", err, tt.want)
			}
			var ce *conversion.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse error %T; want *conversion.Error", err)
			}
		})
	}
}

func TestEventNames(t *testing.T) {
	names := conversion.EventNames()
	want := []string{"Purchase", "LeadSubmitted", "InitiateCheckout", "AddToCart", "ViewContent",
		"OrderCreated", "OrderShipped", "OrderDelivered", "OrderCanceled", "OrderReturned",
		"CartAbandoned", "QualifiedLead", "RatingProvided", "ReviewProvided"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Fatalf("EventNames() mismatch (-want +got):\n%s", diff)
	}
	for _, n := range want {
		in := `{"event_id":"e","event_name":"` + n + `","channel":"whatsapp","business_id":"1","user_id":"2","custom_data":{"currency":"USD","value":1}}`
		if _, err := conversion.Parse([]byte(in)); err != nil {
			t.Errorf("Parse(event_name %s) = %v; want valid", n, err)
		}
	}
	names[0] = "changed"
	if conversion.EventNames()[0] != "Purchase" {
		t.Error("EventNames returns the package's own array")
	}
}

func TestParseFields(t *testing.T) {
	in := `{"event_id":"ord-1","event_name":"Purchase","event_time":1764000000,"channel":"whatsapp",` +
		`"business_id":"106540352242922","user_id":"US.13491208655302741918","dataset_id":"77",` +
		`"custom_data": {"currency":"USD", "value":1.50,"note":"a\u0001\"<b>\u2028","n":[1,true,null]},` +
		`"data_processing_options":["LDU"],"data_processing_options_country":1,"data_processing_options_state":1000}`
	c, err := conversion.Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	one, thousand := 1, 1000
	want := conversion.Conversion{EventID: "ord-1", EventName: "Purchase", EventTime: 1764000000, Channel: "whatsapp",
		BusinessID: "106540352242922", UserID: "US.13491208655302741918", DatasetID: "77",
		CustomData:            json.RawMessage(`{"currency":"USD","value":1.50,"note":"a\u0001\"\u003cb\u003e\u2028","n":[1,true,null]}`),
		DataProcessingOptions: []string{"LDU"}, DataProcessingOptionsCountry: &one, DataProcessingOptionsState: &thousand}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("Parse mismatch (-want +got):\n%s", diff)
	}
	// custom_data comes out as encoding/json would write it: valid and compact.
	var buf bytes.Buffer
	if err := json.Compact(&buf, c.CustomData); err != nil || !bytes.Equal(buf.Bytes(), c.CustomData) {
		t.Errorf("custom_data %s is not compact JSON (%v)", c.CustomData, err)
	}
}

// A Conversion built in code, marshalled with encoding/json, parses back to
// itself: publishers can use the type instead of writing JSON by hand.
func TestMarshalParseRoundTrip(t *testing.T) {
	zero := 0
	c := conversion.Conversion{EventID: "ord-2", EventName: conversion.OrderShipped, Channel: conversion.Instagram,
		BusinessID: "17841405555555555", UserID: "1234567890123456",
		CustomData:            json.RawMessage(`{"order_id":"2"}`),
		DataProcessingOptions: []string{conversion.LDU}, DataProcessingOptionsCountry: &zero, DataProcessingOptionsState: &zero}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := conversion.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("round trip mismatch (-built +parsed):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	ok := func() conversion.Conversion {
		return conversion.Conversion{EventID: "e", EventName: conversion.Purchase, Channel: conversion.WhatsApp,
			BusinessID: "1", UserID: "2", CustomData: json.RawMessage(`{"currency":"USD","value":1}`)}
	}
	two := 2
	tests := []struct {
		name   string
		change func(*conversion.Conversion)
		want   string
	}{
		{"valid", func(*conversion.Conversion) {}, ""},
		{"no event_id", func(c *conversion.Conversion) { c.EventID = "" }, "event_id: empty"},
		{"bad name", func(c *conversion.Conversion) { c.EventName = "Refund" }, "event_name: not one of"},
		{"bad channel", func(c *conversion.Conversion) { c.Channel = "sms" }, "channel: must be"},
		{"millis", func(c *conversion.Conversion) { c.EventTime = 1764000000000 }, "event_time: must be unix seconds"},
		{"NaN custom_data", func(c *conversion.Conversion) { c.CustomData = json.RawMessage(`{"value":NaN}`) }, "custom_data: not JSON"},
		{"1e400 custom_data", func(c *conversion.Conversion) { c.CustomData = json.RawMessage(`{"value":1e400}`) }, "custom_data.value: number too large"},
		{"custom_data array", func(c *conversion.Conversion) { c.CustomData = json.RawMessage(`[]`) }, "custom_data: must be a JSON object"},
		{"purchase no value", func(c *conversion.Conversion) { c.CustomData = json.RawMessage(`{"currency":"USD"}`) }, "custom_data.value"},
		{"purchase no custom_data", func(c *conversion.Conversion) { c.CustomData = nil }, "custom_data: Purchase needs"},
		{"ldu country 2", func(c *conversion.Conversion) {
			c.DataProcessingOptions, c.DataProcessingOptionsCountry, c.DataProcessingOptionsState = []string{"LDU"}, &two, &two
		}, "data_processing_options_country: must be 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok()
			tt.change(&c)
			err := c.Validate()
			if (tt.want == "") != (err == nil) || (err != nil && !strings.HasPrefix(err.Error(), tt.want)) {
				t.Fatalf("Validate = %v; want %q", err, tt.want)
			}
		})
	}
}

// Errors name fields, never values: they end up in logs and headers.
func TestErrorsHoldNoValues(t *testing.T) {
	for _, in := range []string{
		`{"event_id":"e","event_name":"Refund-16315551234","channel":"whatsapp","business_id":"1","user_id":"16315551234"}`,
		`{"event_id":"e","event_name":"Purchase","channel":"telegram-16315551234","business_id":"1","user_id":"16315551234"}`,
		`{"event_id":"e","event_name":"Purchase","channel":"whatsapp","business_id":"1","user_id":"16315551234:x"}`,
		`{"event_id":"e","event_name":"Purchase","channel":"whatsapp","business_id":"1","user_id":"16315551234","custom_data":{"v":16315551234-1}}`,
	} {
		_, err := conversion.Parse([]byte(in))
		if err == nil || strings.Contains(err.Error(), "16315551234") {
			t.Errorf("Parse(%.40s…) error = %v; want an error without the values", in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	fh, err := os.Open("testdata/conversions.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		f.Add(append([]byte(nil), sc.Bytes()...))
	}
	fh.Close()
	f.Add([]byte(msg(`,"custom_data":{"value":NaN}`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := conversion.Parse(data)
		if err != nil {
			return
		}
		if !json.Valid(data) || c.Validate() != nil {
			t.Fatalf("Parse accepted %q, which is not valid JSON or not a valid conversion", data)
		}
		if len(c.CustomData) > 0 && !json.Valid(c.CustomData) {
			t.Fatalf("custom_data %q is not JSON", c.CustomData)
		}
		// What Parse accepts, encoding/json writes and Parse accepts again.
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("json.Marshal(parsed) = %v", err)
		}
		if _, err := conversion.Parse(out); err != nil {
			t.Fatalf("Parse(Marshal(Parse(%q))) = %v", data, err)
		}
	})
}

func TestParseFixtures(t *testing.T) {
	data, err := os.ReadFile("testdata/conversions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	wantErr := []string{"", "", "", "", "",
		"event_id: empty",
		"event_name: not one of",
		"channel: must be whatsapp, messenger or instagram",
		"custom_data.currency: Purchase needs a three-letter currency code",
		"not JSON",
	}
	if len(lines) != len(wantErr) {
		t.Fatalf("fixture has %d lines; want %d", len(lines), len(wantErr))
	}
	for i, l := range lines {
		_, err := conversion.Parse(l)
		switch {
		case wantErr[i] == "" && err != nil:
			t.Errorf("line %d: Parse = %v; want valid", i+1, err)
		case wantErr[i] != "" && (err == nil || !strings.HasPrefix(err.Error(), wantErr[i])):
			t.Errorf("line %d: Parse error = %v; want prefix %q", i+1, err, wantErr[i])
		}
	}
}

func BenchmarkParse(b *testing.B) {
	in := []byte(`{"event_id":"order-8812-purchase","event_name":"Purchase","event_time":1764000000,"channel":"whatsapp",` +
		`"business_id":"104222339999001","user_id":"16315551234","custom_data":{"currency":"USD","value":123.45,"order_id":"8812"}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := conversion.Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}
