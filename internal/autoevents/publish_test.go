package autoevents

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/pkg/conversion"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

var _ Switch = Config{}

// switchFunc lets a test decide per business.
type switchFunc func(string) bool

func (f switchFunc) Enabled(_ context.Context, id string) (bool, error) { return f(id), nil }

type env struct {
	nats *natstest.Server
	js   jetstream.JetStream
	pub  *Publisher
}

// newEnv starts JetStream with the CONVERSIONS stream the sender creates
// (when withStream) and a Publisher with sw.
func newEnv(t *testing.T, sw Switch, withStream bool) *env {
	t.Helper()
	s := natstest.RunJetStream(t)
	js, err := jetstream.New(s.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if withStream {
		if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "CONVERSIONS",
			Subjects: []string{"conversions.>"}, Duplicates: 5 * time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := NewPublisher(js, sw, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return &env{nats: s, js: js, pub: pub}
}

// stored returns the messages in CONVERSIONS, parsed as the sender parses
// them, with their Nats-Msg-Id.
func (e *env) stored(t *testing.T) (map[string]conversion.Conversion, []string) {
	t.Helper()
	st, err := e.js.Stream(t.Context(), "CONVERSIONS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]conversion.Conversion{}
	var subjects []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		c, err := conversion.Parse(m.Data)
		if err != nil {
			t.Fatalf("stored message %d: %v", seq, err)
		}
		out[m.Header.Get(nats.MsgIdHdr)] = c
		subjects = append(subjects, m.Subject)
	}
	return out, subjects
}

func TestPublishRedeliveryIsDuplicate(t *testing.T) {
	e := newEnv(t, Config{On: true}, true)
	events := append(fixtureEvents(t, "whatsapp_automatic_events_purchase.json"),
		fixtureEvents(t, "whatsapp_automatic_events_lead.json")...)
	res, err := e.pub.Publish(t.Context(), events)
	if err != nil || res.Published != 2 || res.Duplicates != 0 {
		t.Fatalf("Publish = %+v, %v; want 2 published", res, err)
	}
	// Meta delivers the purchase webhook again.
	res, err = e.pub.Publish(t.Context(), events[:1])
	if err != nil || res.Published != 0 || res.Duplicates != 1 {
		t.Fatalf("Publish(again) = %+v, %v; want 1 duplicate", res, err)
	}
	got, subjects := e.stored(t)
	if len(got) != 2 {
		t.Fatalf("stream holds %d messages; want 2", len(got))
	}
	for _, s := range subjects {
		if s != "conversions.whatsapp" {
			t.Errorf("subject %q; want conversions.whatsapp", s)
		}
	}
	for _, ev := range events {
		want, err := Convert(ev)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got[want.EventID]); diff != "" {
			t.Errorf("message with Nats-Msg-Id %s (-want +got):\n%s", want.EventID, diff)
		}
	}
	m := e.pub.m.events
	for result, want := range map[string]float64{resultPublished: 2, resultDuplicate: 1, resultInvalid: 0} {
		if got := testutil.ToFloat64(m.WithLabelValues(result)); got != want {
			t.Errorf("automatic_events_total{result=%q} = %v; want %v", result, got, want)
		}
	}
}

// Invalid, click-less and disabled events are counted, not published, and
// are no reason to make Meta retry.
func TestPublishSkips(t *testing.T) {
	e := newEnv(t, switchFunc(func(id string) bool { return id != "OFF" }), true)
	good := webhook.AutomaticEvent{BusinessID: "W", MessageID: "M", EventName: "LeadSubmitted", ClickID: "C"}
	unknown, noClick, off := good, good, good
	unknown.EventName, unknown.MessageID = "Subscribe", "M2"
	noClick.ClickID, noClick.MessageID = "", "M3"
	off.BusinessID = "OFF"
	res, err := e.pub.Publish(t.Context(), []webhook.AutomaticEvent{unknown, noClick, off, good})
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Published: 1, Disabled: 1, NoClick: 1, Invalid: []Rejected{{EventID: EventID("M2", "Subscribe"),
		Reason: "event_name: not one of " + strings.Join(conversion.EventNames(), ", ")}}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("Publish (-want +got):\n%s", diff)
	}
	if got, _ := e.stored(t); len(got) != 1 {
		t.Errorf("stream holds %d messages; want 1", len(got))
	}
	for result, want := range map[string]float64{resultInvalid: 1, resultNoClick: 1, resultDisabled: 1} {
		if got := testutil.ToFloat64(e.pub.m.events.WithLabelValues(result)); got != want {
			t.Errorf("automatic_events_total{result=%q} = %v; want %v", result, got, want)
		}
	}
}

// With NATS away Publish fails at once (the context has no deadline: a wait
// would hang the test), so ingest answers 503; after the restart Meta's
// redelivery is stored once.
func TestPublishNATSAway(t *testing.T) {
	e := newEnv(t, Config{On: true}, true)
	events := fixtureEvents(t, "whatsapp_automatic_events_purchase.json")
	e.nats.Server.Shutdown()
	poll.CheckFor(t, 10*time.Second, func() error {
		if e.js.Conn().Status() == nats.CONNECTED {
			return errors.New("still connected")
		}
		return nil
	})
	res, err := e.pub.Publish(context.WithoutCancel(t.Context()), events)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Publish with NATS away = %+v, %v; want ErrUnavailable", res, err)
	}
	if got := testutil.ToFloat64(e.pub.m.events.WithLabelValues(resultPublished)); got != 0 {
		t.Errorf("published counted %v with NATS away", got)
	}
	e.nats.Restart()
	poll.CheckFor(t, 10*time.Second, func() error {
		_, err := e.pub.Publish(t.Context(), events)
		return err
	})
	if got, _ := e.stored(t); len(got) != 1 {
		t.Errorf("stream holds %d messages; want 1", len(got))
	}
}

// Before the sender created CONVERSIONS nothing stores the events: an
// error, so Meta retries, rather than a 200 for events lost.
func TestPublishNoStream(t *testing.T) {
	e := newEnv(t, Config{On: true}, false)
	_, err := e.pub.Publish(t.Context(), fixtureEvents(t, "whatsapp_automatic_events_lead.json"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Publish without a stream = %v; want ErrUnavailable", err)
	}
}
