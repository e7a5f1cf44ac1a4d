package sender_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

var eventTimeRE = regexp.MustCompile(`"event_time":\d+`)

func fixtures(t *testing.T) [][]byte {
	t.Helper()
	b, err := os.ReadFile("testdata/conversions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			now := strconv.FormatInt(time.Now().Unix(), 10)
			out = append(out, eventTimeRE.ReplaceAll(append([]byte(nil), l...), []byte(`"event_time":`+now)))
		}
	}
	return out
}

// The fixture conversions: the first five are attributed and sent once each
// with their channel's user_data (the WhatsApp one given by phone_number_id
// resolved to its WABA id), the last five are dead letters "invalid".
func TestFixturesEndToEnd(t *testing.T) {
	e := newEnv(t, nil)
	e.touch(attribution.WhatsApp, "102290129340398", "16315551234")
	// 106540352242922 is a phone_number_id of WABA 102290129340398.
	if err := e.store.Record(t.Context(), []attribution.Touch{{
		Key:           attribution.Key{Channel: attribution.WhatsApp, BusinessID: "102290129340398", UserID: "5511988887777"},
		PhoneNumberID: "106540352242922", ClickID: "clid-5511988887777", AdID: "1", Time: time.Now(),
	}}); err != nil {
		t.Fatal(err)
	}
	e.touch(attribution.Messenger, "109876543210987", "6789012345678901")
	e.touch(attribution.Instagram, "17841405555555555", "1234567890123456")

	lines := fixtures(t)
	for i, l := range lines {
		e.publish("whatsapp", l, "fixture-"+strconv.Itoa(i))
	}
	e.settled(20 * time.Second)
	e.sentOnce("ord-1001-purchase", "ord-1002-lead", "ord-1003-purchase", "ord-1004-cart", "ord-1005-shipped")

	wantUserData := map[string]map[string]string{
		"ord-1001-purchase": {"whatsapp_business_account_id": "102290129340398", "ctwa_clid": "clid-16315551234"},
		"ord-1002-lead":     {"whatsapp_business_account_id": "102290129340398", "ctwa_clid": "clid-5511988887777"},
		"ord-1003-purchase": {"page_id": "109876543210987", "page_scoped_user_id": "6789012345678901"},
		"ord-1004-cart":     {"instagram_business_account_id": "17841405555555555", "ig_sid": "1234567890123456"},
		"ord-1005-shipped":  {"whatsapp_business_account_id": "102290129340398", "ctwa_clid": "clid-16315551234"},
	}
	for _, ev := range e.fake.Events() {
		var raw struct {
			ActionSource string            `json:"action_source"`
			UserData     map[string]string `json:"user_data"`
		}
		if err := json.Unmarshal(ev.Raw, &raw); err != nil {
			t.Fatal(err)
		}
		if raw.ActionSource != "business_messaging" {
			t.Errorf("%s: action_source = %q", ev.EventID, raw.ActionSource)
		}
		if got, want := raw.UserData, wantUserData[ev.EventID]; !mapsEqual(got, want) {
			t.Errorf("%s: user_data = %v; want %v", ev.EventID, got, want)
		}
	}
	// The event without event_time takes the publish time.
	for _, ev := range e.fake.Events() {
		if ev.EventID == "ord-1005-shipped" && time.Since(time.Unix(ev.EventTime, 0)) > time.Minute {
			t.Errorf("ord-1005-shipped event_time = %d; want the publish time", ev.EventTime)
		}
	}

	letters := e.dlq()
	if len(letters) != 5 {
		t.Fatalf("%d dead letters; want 5", len(letters))
	}
	want := map[string]bool{}
	for _, l := range lines[5:] {
		want[string(l)] = true
	}
	for i, l := range letters {
		if l.Reason != sender.ReasonInvalid || l.Subject != "dlq.invalid" || l.Error == "" {
			t.Errorf("dead letter %d: reason %q subject %q error %q; want invalid with an error", i, l.Reason, l.Subject, l.Error)
		}
		if !want[string(l.Data)] {
			t.Errorf("dead letter %d data = %s; want one of the original invalid lines", i, l.Data)
		}
		delete(want, string(l.Data))
		if l.Header.Get(sender.HeaderSubject) != "conversions.whatsapp" || l.Header.Get("Nats-Msg-Id") == "" ||
			l.Header.Get(sender.HeaderTime) == "" {
			t.Errorf("dead letter %d headers incomplete: %v", i, l.Header)
		}
	}
	if got := e.metric("sender_conversions_total", map[string]string{"outcome": "invalid"}); got != 5 {
		t.Errorf("invalid count = %v; want 5", got)
	}
	if got := e.metric("sender_conversions_total", map[string]string{"outcome": "sent"}); got != 5 {
		t.Errorf("sent count = %v; want 5", got)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The same event published again (another Nats-Msg-Id, so JetStream keeps
// both), in the same batch and later, reaches Meta once.
func TestDuplicatePublishSentOnce(t *testing.T) {
	e := newEnv(t, nil)
	e.touch(attribution.Messenger, "p1", "psid-1")
	e.touch(attribution.WhatsApp, "w1", "wa-1")
	for i := range 3 {
		e.publish("messenger", conv("dup-m", "messenger", "p1", "psid-1"), "m-"+strconv.Itoa(i))
		e.publish("whatsapp", conv("dup-w", "whatsapp", "w1", "wa-1"), "w-"+strconv.Itoa(i))
	}
	e.settled(20 * time.Second)
	e.publish("messenger", conv("dup-m", "messenger", "p1", "psid-1"), "m-late")
	e.settled(20 * time.Second)
	e.sentOnce("dup-m", "dup-w")
	if got := e.metric("sender_conversions_total", map[string]string{"outcome": "duplicate"}); got != 5 {
		t.Errorf("duplicate count = %v; want 5", got)
	}
	if n := len(e.dlq()); n != 0 {
		t.Errorf("%d dead letters; want none", n)
	}
}

// Dead letters of a batch with one event Meta rejects: that one goes to
// rejected with Meta's message, the others are sent.
func TestRejectedEventIsolated(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) { c.Workers = 1 })
	e.stop() // publish everything first, so that one batch holds it all
	e.touch(attribution.Instagram, "ig1", "igsid-1")
	e.fake.RejectEventID("r-7")
	var ids []string
	for i := range 20 {
		id := "r-" + strconv.Itoa(i)
		e.publish("instagram", conv(id, "instagram", "ig1", "igsid-1"), id)
		if id != "r-7" {
			ids = append(ids, id)
		}
	}
	e.restart()
	e.settled(20 * time.Second)
	e.sentOnce(ids...)
	letters := e.dlq()
	if len(letters) != 1 || letters[0].Reason != sender.ReasonRejected || letters[0].EventID != "r-7" {
		t.Fatalf("dead letters = %+v; want r-7 rejected", letters)
	}
	if !strings.Contains(letters[0].Error, "RejectEventID") {
		t.Errorf("rejected letter error = %q; want Meta's message", letters[0].Error)
	}
}

// Old and future events are dead letters "expired", never posted.
func TestExpired(t *testing.T) {
	e := newEnv(t, nil)
	e.touch(attribution.Messenger, "p1", "psid-1")
	old := time.Now().Add(-8 * 24 * time.Hour).Unix()
	future := time.Now().Add(time.Hour).Unix()
	for id, ts := range map[string]int64{"old": old, "future": future} {
		e.publish("messenger", []byte(`{"event_id":"`+id+`","event_name":"ViewContent","event_time":`+strconv.FormatInt(ts, 10)+
			`,"channel":"messenger","business_id":"p1","user_id":"psid-1"}`), id)
	}
	letters := e.waitDLQ(20*time.Second, 2)
	for _, l := range letters {
		if l.Reason != sender.ReasonExpired {
			t.Errorf("%s: reason %q; want expired", l.EventID, l.Reason)
		}
	}
	e.settled(10 * time.Second)
	e.sentOnce()
}
