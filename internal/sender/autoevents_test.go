package sender_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/autoevents"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// A conversion made from Meta's automatic_events webhook carries its own
// ctwa_clid and no user id: it is sent without a stored context, with Meta's
// click id, once, even when published twice.
func TestAutomaticEventSentWithItsOwnClick(t *testing.T) {
	e := newEnv(t, nil)
	body, err := os.ReadFile("../autoevents/testdata/whatsapp_automatic_events_purchase.json")
	if err != nil {
		t.Fatal(err)
	}
	pl, err := webhook.Parse(body)
	if err != nil || len(pl.AutomaticEvents) != 1 {
		t.Fatalf("Parse = %d automatic events, %v; want 1", len(pl.AutomaticEvents), err)
	}
	c, err := autoevents.Convert(pl.AutomaticEvents[0])
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID != "" || c.CtwaClid == "" {
		t.Fatalf("Convert = user %q clid %q; want no user and Meta's click id", c.UserID, c.CtwaClid)
	}
	c.EventTime = time.Now().Unix() // the fixture's own time is past Meta's 7-day window
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	e.publish("whatsapp", data, c.EventID)
	e.publish("whatsapp", data, c.EventID+"-again") // a second publish, past the duplicate window
	e.waitSent(20*time.Second, c.EventID)
	e.settled(10 * time.Second)
	e.sentOnce(c.EventID)
	for _, ev := range e.fake.Events() {
		if ev.EventID == c.EventID && !strings.Contains(string(ev.Raw), `"ctwa_clid":"`+c.CtwaClid+`"`) {
			t.Errorf("sent %s; want Meta's ctwa_clid", ev.Raw)
		}
	}
	if n := len(e.dlq()); n != 0 {
		t.Errorf("%d dead letters; want none", n)
	}
}
