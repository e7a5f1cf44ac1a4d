package trail

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestAppendJSONMatchesMarshal(t *testing.T) {
	now := At(time.Date(2026, 12, 2, 1, 2, 3, 456789000, time.UTC))
	for _, r := range []Record{
		{BusinessID: "1001", EventID: "ord-\"1\"\n", State: Sent, Attempts: 2, FirstSeenAt: now, UpdatedAt: now, EventName: "Purchase", Channel: "whatsapp",
			Sent: &SentTo{DatasetID: "7001", At: now, FBTraceID: "AbC", EventsReceived: 3, RequestID: "a1b2c3-7"}},
		{BusinessID: "b", EventID: "e", State: DeadLetter, DeadLetter: &Letter{Reason: "rejected", Error: "Meta 100: <bad> ünïcode \u2028"}, RetryAt: &now, Reason: "why"},
		{BusinessID: "b", EventID: "e", State: InDoubt, DeadLetter: &Letter{Reason: "in_doubt", Error: "x", Seq: 42}, Sent: &SentTo{}},
	} {
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.appendJSON(nil, true); string(got) != string(want) {
			t.Errorf("appendJSON:\n%s\nwant\n%s", got, want)
		}
		// Stored without the ids; with them put back it is the same record.
		stored := r.appendJSON(nil, false)
		if strings.Contains(string(stored), "business_id") || strings.Contains(string(stored), "event_id") {
			t.Errorf("stored form holds the ids: %s", stored)
		}
		var x Record
		if err := json.Unmarshal(stored, &x); err != nil {
			t.Fatalf("stored form %s: %v", stored, err)
		}
		x.BusinessID, x.EventID = r.BusinessID, r.EventID
		if got, _ := json.Marshal(&x); string(got) != string(want) {
			t.Errorf("stored form decodes to\n%s\nwant\n%s", got, want)
		}
	}
}
