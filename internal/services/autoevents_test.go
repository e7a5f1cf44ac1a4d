package services

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/ctmpipe/ctmpipe/internal/autoevents"
	"github.com/ctmpipe/ctmpipe/internal/ingest"
	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

var _ ingest.AutoPublisher = autoPublisher{}

// TestPostWebhookAutomaticEvents: with AUTOMATIC_EVENTS=on, a verified
// automatic_events delivery becomes a conversion in stream CONVERSIONS
// before the 200; Meta redelivering it stores nothing new; JetStream away
// answers 503 so that Meta retries.
func TestPostWebhookAutomaticEvents(t *testing.T) {
	ns := natstest.RunJetStream(t)
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "CONVERSIONS",
		Subjects: []string{"conversions.>"}, Duplicates: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := autoevents.NewPublisher(js, autoevents.Config{On: true}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	e := newReceiver(t, ingest.Deps{AutoEvents: autoPublisher{pub}})
	body := fixture(t, "whatsapp_automatic_events_purchase.json")
	for i := range 2 {
		if rec := e.post(body, testAppSecret); rec.Code != http.StatusOK {
			t.Fatalf("POST %d = %d %s; want 200", i, rec.Code, rec.Body)
		}
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("CONVERSIONS holds %d messages after the delivery and its redelivery; want 1", info.State.Msgs)
	}
	m, err := stream.GetMsg(t.Context(), info.State.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "conversions.whatsapp" || !strings.Contains(string(m.Data), `"event_name":"Purchase"`) || !strings.Contains(string(m.Data), `"ctwa_clid"`) {
		t.Errorf("published %s %s; want a whatsapp Purchase carrying ctwa_clid", m.Subject, m.Data)
	}

	ns.Shutdown()
	if rec := e.post(fixture(t, "whatsapp_automatic_events_lead.json"), testAppSecret); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("POST with NATS away = %d; want 503", rec.Code)
	}
}

// TestAutomaticEventsPerBusiness: with AUTOMATIC_EVENTS off, a business
// whose registry record says automatic_events: true has its automatic
// events published (through New's switch); the others' are not.
// A change of the flag is seen without a restart.
func TestAutomaticEventsPerBusiness(t *testing.T) {
	ns := natstest.RunJetStream(t)
	nc := ns.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "CONVERSIONS",
		Subjects: []string{"conversions.>"}, Duplicates: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	rdb := redistest.Start(t).Client(t)
	svc, err := New(Config{}, Deps{Log: zaptest.NewLogger(t), NATS: nc, Redis: rdb, Registerer: prometheus.NewRegistry()}) // AUTOMATIC_EVENTS off
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	e := newReceiver(t, ingest.Deps{AutoEvents: svc.AutoPublisher()})
	msgs := func() uint64 {
		info, err := stream.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	// Not in the registry: nothing published.
	if rec := e.post(fixture(t, "whatsapp_automatic_events_purchase.json"), testAppSecret); rec.Code != http.StatusOK {
		t.Fatalf("POST = %d %s", rec.Code, rec.Body)
	}
	if n := msgs(); n != 0 {
		t.Fatalf("%d conversions published for a business without the flag", n)
	}
	// The WABA of the fixtures opts in.
	reg := registry.NewStore(rdb, nil)
	if _, err := reg.Put(t.Context(), registry.Business{ID: "102290129340398", Channel: registry.WhatsApp, DatasetID: "7001",
		Enabled: true, AutomaticEvents: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for msgs() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the business's automatic events were not published after automatic_events: true")
		}
		if rec := e.post(fixture(t, "whatsapp_automatic_events_lead.json"), testAppSecret); rec.Code != http.StatusOK {
			t.Fatalf("POST = %d %s", rec.Code, rec.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	m, err := stream.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(m.Data), `"event_name":"LeadSubmitted"`) {
		t.Errorf("published %s; want the LeadSubmitted", m.Data)
	}
}
