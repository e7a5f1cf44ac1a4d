package ingest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fastjson"
	"go.uber.org/zap/zaptest"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// freeText is the message text and names in the fixtures: what capture
// must redact. (Ids stay: replay needs them to store the same contexts.)
var freeTextInFixtures = []string{
	"Kerry Fisher", `"Ana"`, `"Bo"`, "Can I learn more about your business?", `"oi"`, `"hello"`,
	"Is this still available?", "How much is it?", `"hey"`, `"hi"`, "Hello! How can we help?",
	"User Kerry changed", // system messages' body: a name and numbers
}

func TestRedactKeepsWhatParseReads(t *testing.T) {
	p := &fastjson.Parser{}
	redactedSome := 0
	for _, name := range fixtureNames(t) {
		body := fixture(t, name)
		out, err := webhook.Redact(p, body)
		if err != nil {
			t.Fatalf("redact(%s): %v", name, err)
		}
		for _, s := range freeTextInFixtures {
			if strings.Contains(string(out), s) {
				t.Errorf("redact(%s) kept %s", name, s)
			}
		}
		if strings.Contains(string(out), webhook.RedactedText) {
			redactedSome++
		}
		parse := func(b []byte) webhook.Payload {
			if strings.Contains(name, "onprem") {
				pl, _ := webhook.ParseOnPrem(b, testOnPremWABA)
				return pl
			}
			pl, _ := webhook.Parse(b)
			return pl
		}
		if diff := cmp.Diff(parse(body), parse(out)); diff != "" {
			t.Errorf("%s: Parse of the redacted body differs (-original +redacted):\n%s", name, diff)
		}
	}
	if redactedSome < 8 {
		t.Errorf("only %d fixtures had anything redacted; want at least 8", redactedSome)
	}
	if _, err := webhook.Redact(p, []byte("not json")); err == nil {
		t.Error("redact(not json) = nil error; want one (it must never publish unredacted)")
	}
}

// Redaction writes JSON that encoding/json accepts and replay takes back,
// for strings that Go quoting would have escaped its own way (\a, \x07,
// \U000e0067): the capture of a click whose headline holds \" and an emoji
// flag used to be invalid JSON, and replay -from-capture refused it.
func TestRedactWritesValidJSON(t *testing.T) {
	flag := "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"
	p := &fastjson.Parser{}
	tests := []struct{ name, headline string }{
		{"quote and flag", `Say \"hi\" ` + flag},
		{"control character", `bell \u0007 and \u001f`},
		{"backslash and line separator", `a\\b \u2028 c`},
		{"escaped surrogate pair", `\ud83c\udff4`},
		{"invalid UTF-8 kept as is", "caf\xe9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"PN"},` +
				`"messages":[{"from":"F","timestamp":"1763900000","text":{"body":"private"},"referral":{"ctwa_clid":"C","source_id":"A","headline":"` + tt.headline + `"}}]}}]}]}`)
			if !json.Valid(body) {
				t.Fatalf("test body is not JSON: %s", body)
			}
			out, err := webhook.Redact(p, body)
			if err != nil {
				t.Fatalf("redact: %v", err)
			}
			if !json.Valid(out) {
				t.Fatalf("redacted body is not JSON: %s", out)
			}
			if strings.Contains(string(out), "private") {
				t.Errorf("redacted body kept the message text: %s", out)
			}
			var in, back map[string]any
			if err := json.Unmarshal(body, &in); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatal(err)
			}
			headline := func(m map[string]any) any {
				v := m["entry"].([]any)[0].(map[string]any)["changes"].([]any)[0].(map[string]any)["value"].(map[string]any)
				return v["messages"].([]any)[0].(map[string]any)["referral"].(map[string]any)["headline"]
			}
			if got, want := headline(back), headline(in); got != want {
				t.Errorf("headline after redaction = %q; want %q", got, want)
			}
			before, _ := webhook.Parse(body)
			after, err := webhook.Parse(out)
			if err != nil || len(after.Touches) != 1 || !cmp.Equal(before, after) {
				t.Errorf("Parse(redacted) = %+v, %v; want %+v", after, err, before)
			}
		})
	}
	// Every occurrence of a duplicated personal key is redacted.
	out, err := webhook.Redact(p, []byte(`{"message":{"text":"one","text":"two"}}`))
	if err != nil || strings.Contains(string(out), "one") || strings.Contains(string(out), "two") {
		t.Errorf("redact(duplicate keys) = %s, %v; want both redacted", out, err)
	}
	// fastjson takes NaN; JSON does not, so it is never published.
	if _, err := webhook.Redact(p, []byte(`{"object":"page","x":NaN}`)); err == nil {
		t.Error("redact(NaN) = nil error; want one")
	}
}

// newCapture connects a Capture to ns with a queue of size queue.
func newCapture(t *testing.T, ns *natstest.Server, queue int) (*Capture, *prometheus.Registry) {
	t.Helper()
	log := zaptest.NewLogger(t)
	nc, err := ConnectNATS(ns.ClientURL(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cfg := testConfig()
	cfg.CaptureQueue = queue
	cfg.CaptureMaxAge = 90 * time.Minute
	reg := prometheus.NewRegistry()
	c, err := NewCapture(nc, cfg, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	return c, reg
}

func TestCapturePublishesRedactedBodies(t *testing.T) {
	ns := natstest.RunJetStream(t)
	capt, reg := newCapture(t, ns, 64)
	store, _ := newMiniStore(t)
	ls := serveLive(t, testConfig(), Deps{Store: store, Capture: capt, Registerer: reg})

	names := fixtureNames(t)
	want := map[string]string{} // subject+path → a fixture name, for the error message
	for _, name := range names {
		body := fixture(t, name)
		path, code := "/webhook", 0
		if strings.Contains(name, "onprem") {
			path = "/webhook/onprem"
			code = ls.send(t, path, body, http.Header{onPremSecretHeader: {testOnPremSecret}})
		} else {
			code = ls.postSigned(t, body)
		}
		if code != http.StatusOK {
			t.Fatalf("POST %s = %d; want 200", name, code)
		}
		want[name] = path
	}
	// Rejected deliveries are not captured.
	ls.send(t, "/webhook", fixture(t, names[0]), nil)
	ls.postSigned(t, []byte("not json"))

	waitFor(t, 10*time.Second, "every body to be published", func() bool {
		return count(t, capt.published) == float64(len(names))
	})
	if got := count(t, capt.dropped) + count(t, capt.failed); got != 0 {
		t.Errorf("dropped+failed = %v; want 0", got)
	}

	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(t.Context(), CaptureStream)
	if err != nil {
		t.Fatal(err)
	}
	info := stream.CachedInfo()
	if info.Config.Storage != jetstream.FileStorage || info.Config.MaxAge != 90*time.Minute || info.Config.Subjects[0] != "webhooks.>" {
		t.Errorf("stream config = %+v; want file storage, MaxAge 90m, subjects webhooks.>", info.Config)
	}
	subjects, redacted := map[string]int{}, 0
	for seq := uint64(1); seq <= uint64(len(names)); seq++ {
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("GetMsg(%d): %v", seq, err)
		}
		subjects[m.Subject]++
		ch := m.Header.Get(HeaderChannel)
		if m.Subject != "webhooks."+ch {
			t.Errorf("message %d: subject %s with %s %q", seq, m.Subject, HeaderChannel, ch)
		}
		wantPath := "/webhook"
		if ch == "onprem" {
			wantPath = "/webhook/onprem"
		}
		if got := m.Header.Get(HeaderPath); got != wantPath {
			t.Errorf("message %d (%s): %s = %q; want %q", seq, m.Subject, HeaderPath, got, wantPath)
		}
		if at, err := time.Parse(time.RFC3339Nano, m.Header.Get(HeaderReceivedAt)); err != nil || time.Since(at) > time.Hour {
			t.Errorf("message %d: %s = %q (%v)", seq, HeaderReceivedAt, m.Header.Get(HeaderReceivedAt), err)
		}
		for _, s := range freeTextInFixtures {
			if strings.Contains(string(m.Data), s) {
				t.Errorf("message %d (%s) carries %s", seq, m.Subject, s)
			}
		}
		if strings.Contains(string(m.Data), webhook.RedactedText) {
			redacted++
		}
	}
	if redacted < 8 {
		t.Errorf("%d captured bodies show %q; want at least 8", redacted, webhook.RedactedText)
	}
	wantSubjects := map[string]int{}
	for _, name := range names {
		ch := chanOnPrem
		if !strings.Contains(name, "onprem") {
			p, err := webhook.Parse(fixture(t, name))
			if err != nil {
				t.Fatal(err)
			}
			ch = channelOf(p.Channel)
		}
		wantSubjects["webhooks."+ch.String()]++
	}
	if wantSubjects["webhooks.whatsapp"] < 5 || wantSubjects["webhooks.unknown"] != 1 {
		t.Fatalf("fixtures by channel %v; the test expects several of each", wantSubjects)
	}
	if diff := cmp.Diff(wantSubjects, subjects); diff != "" {
		t.Errorf("subjects (-want +got):\n%s", diff)
	}
}

// With NATS gone, webhooks are answered as before; the captured copies are
// dropped and counted. When NATS is back, capture resumes.
func TestCaptureNeverBlocksWebhooks(t *testing.T) {
	ns := natstest.RunJetStream(t)
	capt, reg := newCapture(t, ns, 4)
	store, _ := newMiniStore(t)
	ls := serveLive(t, testConfig(), Deps{Store: store, Capture: capt, Registerer: reg})
	body := fixture(t, "whatsapp_cloud_text_with_ctwa_referral.json")

	if code := ls.postSigned(t, body); code != http.StatusOK {
		t.Fatalf("POST = %d; want 200", code)
	}
	waitFor(t, 10*time.Second, "the first body to be published", func() bool { return count(t, capt.published) == 1 })

	ns.Server.Shutdown()
	ns.Server.WaitForShutdown()
	waitFor(t, 10*time.Second, "captured bodies to be dropped", func() bool {
		if code := ls.postSigned(t, body); code != http.StatusOK {
			t.Fatalf("POST with NATS down = %d; want 200", code)
		}
		return count(t, capt.dropped) > 0
	})
	if _, err := store.Get(t.Context(), attribution.Key{Channel: "whatsapp", BusinessID: "102290129340398", UserID: "16315551234"}); err != nil {
		t.Errorf("context not stored while NATS was down: %v", err)
	}

	ns.Restart()
	published := count(t, capt.published)
	waitFor(t, 20*time.Second, "capture to resume after NATS restarted", func() bool {
		ls.postSigned(t, body)
		return count(t, capt.published) > published
	})
}

// The queue is bounded: when the publisher cannot keep up, offers drop
// instead of waiting.
func TestCaptureQueueFullDrops(t *testing.T) {
	ns := natstest.RunJetStream(t)
	capt, _ := newCapture(t, ns, 2) // Run is not started: nothing drains the queue
	done := make(chan struct{})
	go func() {
		for range 5 {
			capt.offer(chanMessenger, pathWebhook, []byte(`{}`))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("offer blocked on a full queue")
	}
	if got := count(t, capt.dropped); got != 3 {
		t.Errorf("dropped = %v; want 3 (queue of 2, 5 offers)", got)
	}
	var nilCapture *Capture
	nilCapture.offer(chanMessenger, pathWebhook, []byte(`{}`)) // capture off: a no-op
}

// A capture whose NATS is down at start does not keep ingest from starting.
func TestCaptureStartsWithoutNATS(t *testing.T) {
	ns := natstest.RunJetStream(t)
	ns.Server.Shutdown()
	ns.Server.WaitForShutdown()
	capt, reg := newCapture(t, ns, 8)
	store, _ := newMiniStore(t)
	ls := serveLive(t, testConfig(), Deps{Store: store, Capture: capt, Registerer: reg})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil && count(t, capt.dropped) == 0 {
		if code := ls.postSigned(t, fixture(t, "instagram_message_with_ad_referral.json")); code != http.StatusOK {
			t.Fatalf("POST with NATS never up = %d; want 200", code)
		}
	}
	if count(t, capt.dropped) == 0 {
		t.Fatal("no body dropped while NATS was down")
	}
}
