package test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
)

// TestFaultIdleFloor: idle needs the consumer's delivered and ack floor at
// CONVERSIONS' last sequence, not only nothing pending: a message published
// but not yet delivered, or delivered and not acked, is not idle. (No
// binaries: runs under -short too.)
func TestFaultIdleFloor(t *testing.T) {
	ns := natstest.RunJetStream(t)
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CONVERSIONS", Subjects: []string{"conversions.>"}}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateConsumer(ctx, "CONVERSIONS", jetstream.ConsumerConfig{Durable: "sender", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	r := &faultRig{t: t, js: js}
	check := func(want bool, wantFloor uint64, wantState string) {
		t.Helper()
		idle, floor, state := r.idle(ctx)
		if idle != want || floor != wantFloor || !strings.Contains(state, wantState) {
			t.Fatalf("idle = %v, floor %d (%s); want %v, %d, %q", idle, floor, state, want, wantFloor, wantState)
		}
	}
	check(true, 0, "delivered 0, ack floor 0")
	for range 2 {
		if _, err := js.Publish(ctx, "conversions.x", []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	check(false, 2, "delivered 0, ack floor 0")
	mb, err := cons.Fetch(2, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range mb.Messages() {
		msgs = append(msgs, m)
	}
	check(false, 2, "delivered 2, ack floor 0")
	for _, m := range msgs {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check(true, 2, "delivered 2, ack floor 2")
}
