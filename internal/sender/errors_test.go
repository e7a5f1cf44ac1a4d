package sender_test

import (
	"encoding/json"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/ledger"
)

// Server errors and throttling are retried with backoff until Meta takes the
// events; each reaches it once and nothing is dead-lettered.
func TestTransientErrorsRetried(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.FailNext(3, 500, 2)     // transient
	e.fake.FailNext(1, 502, 0)     // a proxy's error page
	e.fake.FailNext(2, 400, 4)     // app throttled
	e.fake.FailNext(1, 400, 80004) // business use case throttled
	e.fake.FailNext(1, 429, 613)
	e.touch(attribution.WhatsApp, "w1", "wa-1")
	var ids []string
	for i := range 30 {
		id := "t-" + strconv.Itoa(i)
		ids = append(ids, id)
		e.publish("whatsapp", conv(id, "whatsapp", "w1", "wa-1"), id)
	}
	e.settled(30 * time.Second)
	e.sentOnce(ids...)
	if n := len(e.dlq()); n != 0 {
		t.Errorf("%d dead letters; want none", n)
	}
	for code, want := range map[string]float64{"2": 3, "http_502": 1, "4": 2, "80004": 1, "613": 1} {
		if got := e.metric("sender_graph_errors_total", map[string]string{"code": code}); got != want {
			t.Errorf("graph errors code %s = %v; want %v", code, got, want)
		}
	}
	if got := e.metric("sender_conversions_total", map[string]string{"outcome": "retried"}); got == 0 {
		t.Errorf("retried count = 0; want some")
	}
}

// A revoked token (190) pauses that business without dead letters while
// another business keeps flowing; once the token works again the paused
// events go out.
func TestTokenErrorPausesOnlyThatBusiness(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) {
		c.Datasets = map[string]sender.DatasetConfig{
			"pa": {DatasetID: "ds-a", Token: "token-a", TokenEnv: "TOKEN_A"},
			"pb": {DatasetID: "ds-b", Token: "token-b", TokenEnv: "TOKEN_B"},
		}
	})
	e.fake.SetTokens("token-b") // token-a is revoked
	e.touch(attribution.Messenger, "pa", "psid-a")
	e.touch(attribution.Messenger, "pb", "psid-b")
	for i := range 5 {
		a, b := "a-"+strconv.Itoa(i), "b-"+strconv.Itoa(i)
		e.publish("messenger", conv(a, "messenger", "pa", "psid-a"), a)
		e.publish("messenger", conv(b, "messenger", "pb", "psid-b"), b)
	}
	e.waitSent(20*time.Second, "b-0", "b-1", "b-2", "b-3", "b-4")
	e.waitFor(10*time.Second, "business pa paused", func() bool {
		return e.metric("sender_businesses_paused", nil) == 1
	})
	e.waitFor(10*time.Second, "a paused probe", func() bool {
		return e.metric("sender_conversions_total", map[string]string{"outcome": "paused"}) >= 10
	})
	if n := len(e.dlq()); n != 0 {
		t.Fatalf("%d dead letters while paused; want none", n)
	}
	if got := e.fake.CountByEventID()["a-0"]; got != 0 {
		t.Fatalf("a-0 accepted with a revoked token")
	}
	pausedLogs := e.logs.FilterMessageSnippet("business paused").Len()
	if pausedLogs != 1 {
		t.Errorf("%d 'business paused' errors logged; want 1 per pause", pausedLogs)
	}

	e.fake.SetTokens("token-a", "token-b")
	e.settled(20 * time.Second)
	e.sentOnce("a-0", "a-1", "a-2", "a-3", "a-4", "b-0", "b-1", "b-2", "b-3", "b-4")
	if got := e.metric("sender_businesses_paused", nil); got != 0 {
		t.Errorf("business pa still paused after recovery")
	}
	if e.logs.FilterMessage("business resumed").Len() == 0 {
		t.Errorf("no 'business resumed' log")
	}
	for _, ev := range e.fake.Events() {
		if (ev.EventID[0] == 'a') != (ev.DatasetID == "ds-a") || (ev.EventID[0] == 'a') != (ev.Token == "token-a") {
			t.Errorf("%s went to dataset %s", ev.EventID, ev.DatasetID)
		}
	}
}

// A response lost on the wire leaves the events in doubt: Meta has them, the
// sender cannot know. They go to dead letter in_doubt once the lease is
// over and are never resent; redrive refuses them without -force.
func TestLostResponseEndsInDoubt(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) { c.Workers = 1 })
	e.touch(attribution.Instagram, "ig1", "igsid-1")
	e.fake.DropNext(1)
	e.publish("instagram", conv("lost-1", "instagram", "ig1", "igsid-1"), "lost-1")
	letters := e.waitDLQ(30*time.Second, 1)
	if letters[0].Reason != sender.ReasonInDoubt || letters[0].EventID != "lost-1" {
		t.Fatalf("dead letter = %+v; want lost-1 in_doubt", letters[0])
	}
	e.settled(10 * time.Second)
	e.sentOnce("lost-1") // accepted once by Meta (the fake), never again

	if _, err := sender.Redrive(t.Context(), e.js, sender.RedriveOptions{Reasons: []string{sender.ReasonInDoubt}}); err != sender.ErrNeedForce {
		t.Fatalf("Redrive(in_doubt) without Force = %v; want ErrNeedForce", err)
	}
	// A publisher cannot ask for a resend: a copy with the header the
	// sender once trusted is in doubt again, and not sent.
	m := nats.NewMsg("conversions.instagram")
	m.Data = conv("lost-1", "instagram", "ig1", "igsid-1")
	m.Header.Set(jetstream.MsgIDHeader, "lost-1-forged")
	m.Header.Set("Ctm-Redrive-Force", sender.ReasonInDoubt)
	if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	letters = e.waitDLQ(30*time.Second, 2)
	if letters[1].Reason != sender.ReasonInDoubt || e.fake.CountByEventID()["lost-1"] != 1 {
		t.Fatalf("forged force header: dead letter %+v, at the fake %d times; want in_doubt and 1",
			letters[1], e.fake.CountByEventID()["lost-1"])
	}
	if got := letters[1].Header.Get(sender.HeaderLedgerID); got != "ig1/lost-1" {
		t.Errorf("Ctm-Ledger-Id = %q; want ig1/lost-1", got)
	}
	if _, err := sender.Redrive(t.Context(), e.js, sender.RedriveOptions{Reasons: []string{sender.ReasonInDoubt}, Force: true}); err == nil {
		t.Fatalf("Redrive(in_doubt, force) without the ledger = nil error; want the ledger asked for")
	}
	// With -force the operator decided Meta lacks it: it is sent again, once
	// (the two letters are copies of one event).
	res, err := sender.Redrive(t.Context(), e.js, sender.RedriveOptions{Reasons: []string{sender.ReasonInDoubt}, Force: true,
		TakeOvers: ledger.New(e.rdb, ledger.DefaultSentTTL)})
	if err != nil || res.Republished != 2 || res.Deleted != 2 {
		t.Fatalf("Redrive(in_doubt, force) = %+v, %v; want 2 republished and deleted", res, err)
	}
	e.settled(20 * time.Second)
	if got := e.fake.CountByEventID()["lost-1"]; got != 2 {
		t.Fatalf("lost-1 at the fake %d times after a forced redrive; want 2", got)
	}
	if n := len(e.dlq()); n != 0 {
		t.Errorf("%d dead letters after the forced redrive; want none", n)
	}
}

// Usage headers near the limit slow the business down but lose nothing.
func TestUsageHeadersHonoured(t *testing.T) {
	const wait = time.Second // RETRY_MIN: the wait between a business's requests at 90% of a limit
	e := newEnv(t, func(c *sender.Config) { c.RetryMin, c.RetryMax = wait, 2*wait })
	e.fake.SetUsage(95)
	e.touch(attribution.Messenger, "p1", "psid-1")
	publish := func(prefix string) []string {
		var ids []string
		for i := range 5 {
			id := prefix + strconv.Itoa(i)
			ids = append(ids, id)
			e.publish("messenger", conv(id, "messenger", "p1", "psid-1"), id)
		}
		return ids
	}
	first := publish("u-")
	e.waitSent(20*time.Second, first...)
	// Published at once after the first request was answered: without the
	// usage header's slowdown they would go out after LINGER (100 ms).
	second := publish("v-")
	e.settled(30 * time.Second)
	e.sentOnce(append(first, second...)...)
	at := map[string]time.Time{}
	for _, ev := range e.fake.Events() {
		at[ev.EventID] = ev.Received
	}
	if gap := at["v-0"].Sub(at["u-0"]); gap < wait {
		t.Errorf("the second request came %v after the first; want at least RETRY_MIN (%v) at 95%% of Meta's limit", gap, wait)
	}
}

// A business paused for long, with more messages than MaxAckPending, must
// not stall the others: its messages are parked in PARKED and acked, and
// they come back once its token works again, each sent once.
func TestPausedBusinessParkedNotStallingOthers(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) {
		c.Datasets = map[string]sender.DatasetConfig{
			"pa": {DatasetID: "ds-a", Token: "token-a", TokenEnv: "TOKEN_A"},
			"pb": {DatasetID: "ds-b", Token: "token-b", TokenEnv: "TOKEN_B"},
		}
		c.MaxAckPending = 20
		c.BatchSize = 10
		c.PauseInterval = time.Hour // handed back instead of parked, pa would hold every slot for an hour
	})
	e.fake.SetTokens("token-b") // token-a is revoked
	e.touch(attribution.Messenger, "pa", "psid-a")
	e.touch(attribution.Messenger, "pb", "psid-b")
	var as, bs []string
	for i := range 60 {
		a := "a-" + strconv.Itoa(i)
		e.publish("messenger", conv(a, "messenger", "pa", "psid-a"), a)
		as = append(as, a)
	}
	for i := range 10 {
		b := "b-" + strconv.Itoa(i)
		e.publish("messenger", conv(b, "messenger", "pb", "psid-b"), b)
		bs = append(bs, b)
	}
	e.waitSent(30*time.Second, bs...)
	e.waitFor(10*time.Second, "pa's 60 messages parked", func() bool { return e.parked() == 60 })
	if n := len(e.dlq()); n != 0 {
		t.Fatalf("%d dead letters while paused; want none", n)
	}

	// The token is fixed and the pause ends (a restart forgets this
	// sender's own hour; the shared pause key expires): a probe goes out,
	// succeeds, and the rest follows.
	e.fake.SetTokens("token-a", "token-b")
	e.stop()
	e.cfg.PauseInterval = 300 * time.Millisecond
	if err := e.rdb.Del(t.Context(), "ctm:biz:{pa}:paused").Err(); err != nil {
		t.Fatal(err)
	}
	e.restart()
	e.settled(30 * time.Second)
	e.sentOnce(append(as, bs...)...)
	if n := len(e.dlq()); n != 0 {
		t.Errorf("%d dead letters; want none", n)
	}
	if e.logs.FilterMessage("parked messages sent back").Len() < 2 {
		t.Errorf("want a probe and then the rest sent back (2+ 'parked messages sent back' logs)")
	}
}

// Meta refuses to read a WABA's dataset edge; the sender resolves it with the
// POST, which returns the existing dataset, and sends.
func TestDatasetResolvedWhenReadRefused(t *testing.T) {
	e := newEnvGraph(t, fakegraph.Options{RefuseDatasetRead: true, StrictDatasets: true}, nil, nil)
	e.touch(attribution.WhatsApp, "w1", "wa-1")
	e.publish("whatsapp", conv("ds-1", "whatsapp", "w1", "wa-1"), "ds-1")
	e.settled(20 * time.Second)
	e.sentOnce("ds-1")
	if n := len(e.dlq()); n != 0 {
		t.Errorf("%d dead letters; want none", n)
	}
	for _, c := range e.fake.DatasetCalls() {
		if c.Method != "POST" {
			t.Errorf("Dataset API %s; want POST only", c.Method)
		}
	}
}

// Setup faults of a business (code 3 capability, 10/200-299 permission,
// 100 with subcode 33 object missing) pause it and park its messages: no
// batch is halved, nothing is dead-lettered, and once Meta accepts again
// every event goes out once.
func TestSetupFaultsPauseAndPark(t *testing.T) {
	for _, tt := range []struct {
		name                  string
		status, code, subcode int
	}{
		{"capability 3", 400, 3, 0},
		{"permission 10", 403, 10, 0},
		{"permission 200", 403, 200, 0},
		{"object missing 100/33", 400, 100, 33},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *sender.Config) { c.PauseInterval = time.Second })
			e.fake.FailNextSubcode(3, tt.status, tt.code, tt.subcode) // the first request and two probes
			e.touch(attribution.WhatsApp, "w1", "wa-1")
			var ids []string
			for i := range 8 {
				id := "s-" + strconv.Itoa(i)
				ids = append(ids, id)
				e.publish("whatsapp", conv(id, "whatsapp", "w1", "wa-1"), id)
			}
			e.waitFor(10*time.Second, "the business paused", func() bool {
				return e.metric("sender_businesses_paused", nil) == 1
			})
			e.waitFor(10*time.Second, "its messages parked", func() bool { return e.parked() > 0 })
			e.settled(30 * time.Second)
			e.sentOnce(ids...)
			if n := len(e.dlq()); n != 0 {
				t.Errorf("%d dead letters; want none", n)
			}
		})
	}
}

// A Graph error that echoes the request (its URL with access_token and
// appsecret_proof, the token itself) is stored in Ctm-Dlq-Error and logged
// without them; Meta's explanation stays.
func TestGraphErrorTextScrubbed(t *testing.T) {
	const token, secret = "EAAGm0PX4ZCpsBAKZAZBsendertoken0123456789", "scrub-app-secret"
	e := newEnvGraph(t, fakegraph.Options{Tokens: []string{token}, AppSecrets: map[string]string{token: secret}},
		func(c *sender.Config) { c.AccessToken, c.AppSecret = token, secret }, nil)
	e.fake.EchoRequest(true)
	e.fake.RejectEventID("bad-1")
	e.touch(attribution.WhatsApp, "w1", "wa-1")
	e.publish("whatsapp", conv("bad-1", "whatsapp", "w1", "wa-1"), "bad-1")
	dead := e.waitDLQ(20*time.Second, 1)
	proof := capi.AppSecretProof(token, secret)
	if got := dead[0].Error; strings.Contains(got, token) || strings.Contains(got, proof) || !strings.Contains(got, "marked invalid") {
		t.Errorf("Ctm-Dlq-Error = %q; want Meta's message without the token or the proof", got)
	}
	for _, entry := range e.logs.All() {
		b, _ := json.Marshal(entry.ContextMap())
		if text := entry.Message + " " + string(b); strings.Contains(text, token) || strings.Contains(text, proof) {
			t.Errorf("log entry holds the token or the proof: %s", text)
		}
	}
}

// 368 (temporarily blocked for policy violations) is a long retry: the
// business waits at least RETRY_MAX and PAUSE_INTERVAL, nothing is
// dead-lettered or parked, and the event goes out once afterwards.
func TestBlockedIsALongRetry(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) { c.RetryMax, c.PauseInterval = 400*time.Millisecond, 600*time.Millisecond })
	e.fake.FailNext(1, 400, 368)
	e.touch(attribution.WhatsApp, "w1", "wa-1")
	e.publish("whatsapp", conv("blk-1", "whatsapp", "w1", "wa-1"), "blk-1")
	e.settled(20 * time.Second)
	e.sentOnce("blk-1")
	if n := len(e.dlq()); n != 0 {
		t.Errorf("%d dead letters; want none", n)
	}
	logs := e.logs.FilterMessage("business temporarily blocked by meta").All()
	if len(logs) != 1 {
		t.Fatalf("%d 'temporarily blocked' logs; want 1", len(logs))
	}
	if d, _ := logs[0].ContextMap()["wait"].(time.Duration); d < 600*time.Millisecond {
		t.Errorf("blocked business waits %v; want at least PAUSE_INTERVAL (600ms)", d)
	}
}
