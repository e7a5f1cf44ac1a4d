package loadgen

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/conversion"
)

func TestConversionMessagesFollowTheContract(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	mix, _ := ParseMix(DefaultMix)
	c := &ConvGen{Bodies: NewBodyGen(3), Mix: mix, Contexts: 50}
	if err := c.Seed(t.Context(), attribution.NewStore(rdb, 0)); err != nil {
		t.Fatal(err)
	}
	store := attribution.NewStore(rdb, 0)
	now := time.Unix(1764000000, 0)
	ids := map[string]bool{}
	for i := range 120 { // more conversions than contexts: users repeat, event ids do not
		m := c.Message("conversions", "lg-x-r1-", i, now)
		conv, err := conversion.Parse(m.Data) // the sender's own check
		if err != nil {
			t.Fatalf("conversion %d: %v: %s", i, err, m.Data)
		}
		if conv.EventID != EventID("lg-x-r1-", i) || m.Header.Get("Nats-Msg-Id") != conv.EventID || ids[conv.EventID] {
			t.Fatalf("conversion %d: event_id %q, Nats-Msg-Id %q, seen before %v", i, conv.EventID, m.Header.Get("Nats-Msg-Id"), ids[conv.EventID])
		}
		ids[conv.EventID] = true
		if m.Subject != "conversions."+conv.Channel || conv.EventName != "Purchase" || conv.EventTime != now.Unix() {
			t.Errorf("conversion %d: subject %q, name %q, time %d", i, m.Subject, conv.EventName, conv.EventTime)
		}
		var cd struct {
			Currency string   `json:"currency"`
			Value    *float64 `json:"value"`
		}
		if json.Unmarshal(conv.CustomData, &cd) != nil || cd.Currency != "USD" || cd.Value == nil {
			t.Errorf("conversion %d: Purchase custom_data %s lacks currency or numeric value", i, conv.CustomData)
		}
		// Every conversion joins a seeded context.
		k := attribution.Key{Channel: conv.Channel, BusinessID: conv.BusinessID, UserID: conv.UserID}
		if _, err := store.Get(t.Context(), k); err != nil {
			t.Fatalf("conversion %d: its context: %v", i, err)
		}
	}
	if len(c.Businesses()) != 9 {
		t.Errorf("Businesses() = %v; want 3 per channel", c.Businesses())
	}
}

func TestTracker(t *testing.T) {
	tr := NewTracker("lg-a-r1-", 3)
	t0 := time.Unix(100, 0)
	tr.SetDue(0, t0)
	tr.SetDue(1, t0)
	tr.Accept(t0.Add(5*time.Millisecond), "lg-a-r1-0", "lg-a-r2-1", "other", "lg-a-r1-x", "lg-a-r1-7", "lg-a-r1--1")
	tr.Accept(t0.Add(9*time.Millisecond), "lg-a-r1-0", "lg-a-r1-1")
	select {
	case <-tr.Done():
		t.Fatal("Done before every conversion arrived")
	default:
	}
	tr.Accept(t0.Add(time.Second), "lg-a-r1-2") // no due time: counted, no latency
	select {
	case <-tr.Done():
	default:
		t.Fatal("Done not closed after every conversion arrived")
	}
	s := tr.Stats()
	if s.Received != 3 || s.Dups != 1 || s.Missing != 0 || s.Latency.Count() != 2 || s.Latency.Max() != 9*time.Millisecond {
		t.Errorf("Stats = received %d, dups %d, missing %d, latencies %d, max %v; want 3, 1, 0, 2, 9ms",
			s.Received, s.Dups, s.Missing, s.Latency.Count(), s.Latency.Max())
	}
	tr.Accept(t0, "lg-a-r1-2") // a late duplicate after Done must not panic
	if tr.Stats().Dups != 2 {
		t.Errorf("Dups = %d; want 2", tr.Stats().Dups)
	}
}

func TestSinkAnswersAndTracks(t *testing.T) {
	s := NewSink()
	defer s.Close()
	tr := NewTracker("p-", 2)
	s.Attach(tr)
	body := `{"data":[{"event_id":"p-0","event_name":"Purchase"},{"event_id":"p-1"}],"partner_agent":"x"}`
	resp, err := http.Post(s.URL()+"/v24.0/123/events?access_token=t", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		EventsReceived int `json:"events_received"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 || got.EventsReceived != 2 {
		t.Fatalf("sink answered %d, events_received %d, %v; want 200, 2", resp.StatusCode, got.EventsReceived, err)
	}
	if st := tr.Stats(); st.Received != 2 {
		t.Errorf("tracker received %d; want 2", st.Received)
	}
	resp2, err := http.Post(s.URL()+"/v24.0/123/events", "application/json", strings.NewReader("not json"))
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusBadRequest {
		t.Errorf("sink answered %d to a bad body; want 400", resp2.StatusCode)
	}
}
