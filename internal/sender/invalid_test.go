package sender_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/conversion"
)

// Conversions that fastjson reads but JSON forbids (NaN, Infinity, 1-2, a
// raw control character) are dead letters invalid on their first delivery:
// never retried, nothing written to the ledger, nothing posted.
func TestNotJSONDeadLetteredAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	e.touch(attribution.Messenger, "p1", "psid-1")
	head := `{"event_name":"Purchase","channel":"messenger","business_id":"p1","user_id":"psid-1","event_id":`
	bad := map[string]string{
		"nan":   head + `"nan","custom_data":{"currency":"USD","value":NaN}}`,
		"inf":   head + `"inf","custom_data":{"currency":"USD","value":Infinity}}`,
		"minus": head + `"minus","custom_data":{"currency":"USD","value":1-2}}`,
		"ctl":   head + `"ctl","custom_data":{"currency":"USD","value":1,"note":"a` + "\x01" + `b"}}`,
	}
	for id, m := range bad {
		e.publish("messenger", []byte(m), id)
	}
	letters := e.waitDLQ(20*time.Second, len(bad))
	e.settled(10 * time.Second)
	for _, l := range letters {
		id := l.Header.Get(sender.HeaderMsgID)
		if l.Reason != sender.ReasonInvalid || !strings.HasPrefix(l.Error, "not JSON: syntax error at byte") {
			t.Errorf("%s: dead letter %q (%s); want invalid, not JSON", id, l.Reason, l.Error)
		}
		delete(bad, id)
	}
	if len(bad) != 0 || len(letters) != 4 {
		t.Errorf("%d dead letters; missing %d", len(letters), len(bad))
	}
	c, err := e.js.Consumer(context.Background(), sender.StreamConversions, sender.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered != 0 || info.Delivered.Consumer != 4 {
		t.Errorf("consumer delivered %d, redelivered %d; want each message delivered once",
			info.Delivered.Consumer, info.NumRedelivered)
	}
	keys, err := e.rdb.Keys(context.Background(), "ctm:ledger:*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("ledger keys %d (%v); want none for invalid messages", len(keys), err)
	}
	e.sentOnce()
}

// An escaped control character and a quote in custom_data are JSON: the
// event goes to Meta with custom_data intact (it used to be re-encoded as
// "\x01", which is not JSON, and failed at every send).
func TestEscapedCustomDataSent(t *testing.T) {
	e := newEnv(t, nil)
	e.touch(attribution.Instagram, "ig1", "igsid-1")
	e.publish("instagram", []byte(`{"event_id":"esc","event_name":"RatingProvided","channel":"instagram","business_id":"ig1",`+
		`"user_id":"igsid-1","custom_data":{"note":"a\u0001\"b\\c"}}`), "esc")
	e.settled(20 * time.Second)
	e.sentOnce("esc")
	for _, ev := range e.fake.Events() {
		var got struct {
			CustomData struct{ Note string } `json:"custom_data"`
		}
		if err := json.Unmarshal(ev.Raw, &got); err != nil || got.CustomData.Note != "a\x01\"b\\c" {
			t.Errorf("custom_data.note at Meta = %q (%v); want the published string", got.CustomData.Note, err)
		}
	}
	if n := len(e.dlq()); n != 0 {
		t.Errorf("%d dead letters; want none", n)
	}
}

// All 14 event names of Meta's guide reach (the fake) Meta; any other name
// is dead letter invalid, with the allowed names in the error.
func TestEveryEventNameSentUnknownInvalid(t *testing.T) {
	e := newEnv(t, nil)
	e.touch(attribution.Messenger, "p1", "psid-1")
	var ids []string
	for _, n := range conversion.EventNames() {
		id := "name-" + n
		ids = append(ids, id)
		e.publish("messenger", []byte(`{"event_id":"`+id+`","event_name":"`+n+`","channel":"messenger","business_id":"p1",`+
			`"user_id":"psid-1","custom_data":{"currency":"USD","value":1}}`), id)
	}
	e.publish("messenger", []byte(`{"event_id":"name-Refund","event_name":"Refund","channel":"messenger","business_id":"p1","user_id":"psid-1"}`), "")
	letters := e.waitDLQ(20*time.Second, 1)
	e.settled(20 * time.Second)
	e.sentOnce(ids...)
	if len(letters) != 1 || letters[0].Reason != sender.ReasonInvalid ||
		!strings.Contains(letters[0].Error, strings.Join(conversion.EventNames(), ", ")) {
		t.Errorf("dead letters %+v; want name-Refund invalid listing the 14 names", letters)
	}
}

// Limited Data Use goes to Meta with its event, and only with it.
func TestLimitedDataUseSentPerEvent(t *testing.T) {
	e := newEnv(t, nil)
	e.touch(attribution.Messenger, "p1", "psid-1")
	e.publish("messenger", []byte(`{"event_id":"ldu","event_name":"LeadSubmitted","channel":"messenger","business_id":"p1","user_id":"psid-1",`+
		`"data_processing_options":["LDU"],"data_processing_options_country":1,"data_processing_options_state":1000}`), "ldu")
	e.publish("messenger", []byte(`{"event_id":"plain","event_name":"LeadSubmitted","channel":"messenger","business_id":"p1","user_id":"psid-1"}`), "plain")
	e.publish("messenger", []byte(`{"event_id":"bad-ldu","event_name":"LeadSubmitted","channel":"messenger","business_id":"p1","user_id":"psid-1",`+
		`"data_processing_options":["LDU"],"data_processing_options_country":2,"data_processing_options_state":0}`), "bad-ldu")
	letters := e.waitDLQ(20*time.Second, 1)
	e.settled(20 * time.Second)
	e.sentOnce("ldu", "plain")
	for _, ev := range e.fake.Events() {
		var got struct {
			Options []string `json:"data_processing_options"`
			Country *int     `json:"data_processing_options_country"`
			State   *int     `json:"data_processing_options_state"`
		}
		if err := json.Unmarshal(ev.Raw, &got); err != nil {
			t.Fatal(err)
		}
		ldu := len(got.Options) == 1 && got.Options[0] == "LDU" && got.Country != nil && *got.Country == 1 &&
			got.State != nil && *got.State == 1000
		plain := got.Options == nil && got.Country == nil && got.State == nil
		if (ev.EventID == "ldu" && !ldu) || (ev.EventID == "plain" && !plain) {
			t.Errorf("%s at Meta: %s", ev.EventID, ev.Raw)
		}
	}
	if len(letters) != 1 || letters[0].EventID != "bad-ldu" || letters[0].Reason != sender.ReasonInvalid ||
		!strings.HasPrefix(letters[0].Error, "data_processing_options_country: must be 0") {
		t.Errorf("dead letters %+v; want bad-ldu invalid", letters)
	}
}
