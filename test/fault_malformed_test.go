package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/conversion"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// Scenario 7, ingest: malformed input of every kind, each posted many
// times concurrently, gets its documented status and stores nothing; ingest
// stays healthy and a valid conversation still goes through afterwards.
func TestFaultMalformedWebhooks(t *testing.T) {
	t.Parallel() // own ports, dirs and servers (newFaultRig)
	r := newFaultRig(t, faultOptions{IngestEnv: []string{"BODY_LIMIT=64KiB"}})
	rdb := r.redis.Client(t)
	before, err := rdb.DBSize(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	valid := faultWebhook(r.convs(1, "whatsapp", nil), time.Now()) // never posted validly
	sign := func(b []byte) string { return webhook.Sign(b, []byte(faultAppSecret)) }
	type tc struct {
		name string
		body []byte
		sig  string // X-Hub-Signature-256; "" for none
		want int
	}
	signed := func(name string, body []byte, want int) tc { return tc{name, body, sign(body), want} }
	cases := []tc{
		signed("not JSON", []byte("<xml>nope</xml>"), 400),
		signed("truncated JSON", valid[:len(valid)/2], 400),
		signed("empty body", []byte{}, 400),
		signed("deeply nested", bytes.Repeat([]byte("["), 60<<10), 400),
		// JSON, but no webhook payload (an object) at all: ingest treats
		// these as not JSON rather than as a kind it does not use.
		signed("JSON string", []byte(`"page"`), 400),
		signed("JSON array", []byte(`[{"object":"page"}]`), 400),
		signed("JSON null", []byte(`null`), 400),
		signed("invalid UTF-8 in an id", []byte("{\"object\":\"page\",\"entry\":[{\"id\":\"\xff\xfe\",\"messaging\":[{\"sender\":{\"id\":\"\xff\"},\"recipient\":{\"id\":\"\xfe\"},\"message\":{\"referral\":{\"ad_id\":\"1\"}}}]}]}"), 200),
		signed("just over BODY_LIMIT", append(append([]byte(`{"object":"page","x":"`), bytes.Repeat([]byte("a"), 64<<10)...), `"}`...), 413),
		signed("8 MiB", bytes.Repeat([]byte(" "), 8<<20), 413),
		{"unsigned", valid, "", 401},
		{"another app's secret", valid, webhook.Sign(valid, []byte("someone-else")), 401},
		{"signature of another body", valid, sign([]byte(`{"object":"page","entry":[]}`)), 401},
		{"not hex", valid, "sha256=zzzz", 401},
		{"sha1 scheme", valid, "sha1=" + strings.TrimPrefix(sign(valid), "sha256="), 401},
		{"truncated signature", valid, sign(valid)[:30], 401},
	}
	files, err := filepath.Glob(filepath.Join("testdata", "fault", "webhooks", "*.json"))
	if err != nil || len(files) < 10 {
		t.Fatalf("fixtures: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, signed(filepath.Base(f), b, 200))
	}
	const times = 10
	faultParallel(t, 8, len(cases)*times, func(i int) error {
		c := cases[i%len(cases)]
		if got := r.postWith(c.body, c.sig); got != c.want {
			return fmt.Errorf("%s: POST /webhook = %d; want %d", c.name, got, c.want)
		}
		return nil
	})

	for _, path := range []string{"/healthz", "/readyz"} {
		if code := r.get(path); code != 200 {
			t.Errorf("GET %s after the malformed input = %d; want 200", path, code)
		}
	}
	if after, err := rdb.DBSize(t.Context()).Result(); err != nil || after != before {
		t.Errorf("Redis holds %d keys after the malformed input (%v); want %d: nothing stored", after, err, before)
	}
	mark := r.mark()
	faultDeliverAndPublish(t, r, r.convs(5, "messenger", nil))
	faultDeliverAndPublish(t, r, r.convs(5, "whatsapp", nil))
	account(t, r, r.since(mark), faultAccountOpts{})
}

// Scenario 7, sender: malformed conversions of every kind, interleaved with
// valid ones in the same batches, each end as a dead letter with the right
// reason (invalid, or expired for an event_time Meta would refuse), never
// at Meta; the valid ones are sent once.
func TestFaultMalformedConversions(t *testing.T) {
	t.Parallel() // own ports, dirs and servers (newFaultRig)
	r := newFaultRig(t, faultOptions{})
	mark := r.mark()
	base := faultDeliverAndPublish(t, r, r.convs(1, "whatsapp", nil))[0] // its context is stored; sent once
	now := time.Now()
	n := 0
	conv := func(mod func(m map[string]any)) (string, []byte) {
		n++
		m := map[string]any{"event_id": fmt.Sprintf("bad-%s-%02d", r.run, n), "event_name": "LeadSubmitted",
			"event_time": now.Unix(), "channel": "whatsapp", "business_id": base.Biz.ID, "user_id": base.User}
		mod(m)
		id, _ := m["event_id"].(string)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return id, b
	}
	type tc struct {
		name, subject, eventID string // eventID: as the sender reads it ("" when unreadable)
		data                   []byte
		reason                 string
	}
	cases := []tc{
		{name: "not JSON", data: []byte("this is not JSON"), reason: "invalid"},
		{name: "empty message", data: []byte{}, reason: "invalid"},
		{name: "JSON array", data: []byte(`[{"event_id":"x"}]`), reason: "invalid"},
		{name: "JSON null", data: []byte(`null`), reason: "invalid"},
	}
	add := func(name, reason string, unreadableID bool, mod func(m map[string]any)) {
		id, b := conv(mod)
		if unreadableID {
			id = ""
		}
		cases = append(cases, tc{name: name, eventID: id, data: b, reason: reason})
	}
	add("event_id a number", "invalid", true, func(m map[string]any) { m["event_id"] = 12345 })
	add("event_id empty", "invalid", true, func(m map[string]any) { m["event_id"] = "" })
	add("event_id missing", "invalid", true, func(m map[string]any) { delete(m, "event_id") })
	add("event_id with a newline", "invalid", true, func(m map[string]any) { m["event_id"] = m["event_id"].(string) + "\n1" })
	add("event_id too long", "invalid", false, func(m map[string]any) { m["event_id"] = m["event_id"].(string) + strings.Repeat("x", 300) })
	add("unknown channel", "invalid", false, func(m map[string]any) { m["channel"] = "telegram" })
	add("channel missing", "invalid", false, func(m map[string]any) { delete(m, "channel") })
	add("unknown event_name", "invalid", false, func(m map[string]any) { m["event_name"] = "Refund" })
	add("event_name a number", "invalid", false, func(m map[string]any) { m["event_name"] = 7 })
	add("Purchase without custom_data", "invalid", false, func(m map[string]any) { m["event_name"] = "Purchase" })
	add("Purchase without value", "invalid", false, func(m map[string]any) {
		m["event_name"], m["custom_data"] = "Purchase", map[string]any{"currency": "USD"}
	})
	add("Purchase value a string", "invalid", false, func(m map[string]any) {
		m["event_name"], m["custom_data"] = "Purchase", map[string]any{"currency": "USD", "value": "12.50"}
	})
	add("Purchase bad currency", "invalid", false, func(m map[string]any) {
		m["event_name"], m["custom_data"] = "Purchase", map[string]any{"currency": "US", "value": 12.5}
	})
	add("custom_data a string", "invalid", false, func(m map[string]any) { m["custom_data"] = "value=12" })
	add("business_id missing", "invalid", false, func(m map[string]any) { delete(m, "business_id") })
	add("business_id with a colon", "invalid", false, func(m map[string]any) { m["business_id"] = "1042:1" })
	add("user_id a number", "invalid", false, func(m map[string]any) { m["user_id"] = 15550001 })
	add("user_id too long", "invalid", false, func(m map[string]any) { m["user_id"] = strings.Repeat("1", conversion.MaxUserIDLen+1) })
	add("dataset_id with braces", "invalid", false, func(m map[string]any) { m["dataset_id"] = "{9}" })
	add("event_time a string", "invalid", false, func(m map[string]any) { m["event_time"] = "yesterday" })
	add("event_time in milliseconds", "invalid", false, func(m map[string]any) { m["event_time"] = now.UnixMilli() })
	add("event_time a fraction", "invalid", false, func(m map[string]any) { m["event_time"] = float64(now.Unix()) + 0.5 })
	add("event_time negative", "invalid", false, func(m map[string]any) { m["event_time"] = -5 })
	add("event_time a year old", "expired", false, func(m map[string]any) { m["event_time"] = now.AddDate(-1, 0, 0).Unix() })
	add("event_time 8 days old", "expired", false, func(m map[string]any) { m["event_time"] = now.Add(-8 * 24 * time.Hour).Unix() })
	add("event_time a day ahead", "expired", false, func(m map[string]any) { m["event_time"] = now.Add(24 * time.Hour).Unix() })

	for i, c := range cases {
		subject := "conversions.whatsapp"
		if strings.Contains(string(c.data), `"telegram"`) {
			subject = "conversions.telegram"
		}
		msgID := fmt.Sprintf("bad-msg-%s-%02d", r.run, i)
		r.expect(faultWant{EventID: c.eventID, MsgIDs: []string{msgID}, Reason: c.reason})
		if err := r.publish(subject, msgID, c.data); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		faultDeliverAndPublish(t, r, r.convs(1, faultChannels[i%len(faultChannels)], nil)) // a valid neighbour
	}
	wants := r.since(mark)
	tally := account(t, r, wants, faultAccountOpts{})
	if tally.Dead["invalid"]+tally.Dead["expired"] != len(cases) || tally.Sent != len(cases)+1 {
		t.Errorf("%d sent, dead letters %v; want %d sent and %d dead letters", tally.Sent, tally.Dead, len(cases)+1, len(cases))
	}
	// Each dead letter says why, naming the rule but never the values.
	dead, err := r.deadLetters(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dead {
		if d.Error == "" || strings.Contains(d.Error, base.User) {
			t.Errorf("dead letter %s/%s has error text %q; want the rule broken, without personal data", d.MsgID, d.Reason, d.Error)
		}
	}
}
