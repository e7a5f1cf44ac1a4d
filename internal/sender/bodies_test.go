package sender_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/sender"
)

// A conversion within a few hundred bytes of NATS max_payload fits
// CONVERSIONS but not DLQ with the dead-letter headers. It is dead-lettered
// once, with every header and a truncated body marked as such, the whole
// original in DLQ_BODIES; a redrive publishes it back whole.
func TestNearMaxPayloadDeadLetteredOnceAndRedrivenWhole(t *testing.T) {
	e := newEnv(t, nil)
	limit := int(e.js.Conn().MaxPayload())
	head := `{"event_id":"big-1","event_name":"NotAMetaEvent","channel":"whatsapp","business_id":"w1","user_id":"wa-1","custom_data":{"note":"`
	tail := `"}}`
	size := limit - 150 // the Nats-Msg-Id header below takes about 30 bytes
	big := []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
	m := nats.NewMsg("conversions.whatsapp")
	m.Data = big
	m.Header.Set(jetstream.MsgIDHeader, "big-1")
	if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatalf("publish near max_payload (%d of %d bytes): %v", len(big), limit, err)
	}
	letters := e.waitDLQ(30*time.Second, 1)
	e.settled(20 * time.Second)
	if n := len(e.dlq()); n != 1 {
		t.Fatalf("%d dead letters; want 1", n)
	}
	l := letters[0]
	if l.Reason != sender.ReasonInvalid || l.Error == "" || l.EventID != "big-1" {
		t.Errorf("dead letter = reason %q, error %q, event %q; want invalid with its reason, big-1", l.Reason, l.Error, l.EventID)
	}
	name := l.Header.Get(sender.HeaderBodyObject)
	if l.Header.Get(sender.HeaderTruncated) != strconv.Itoa(len(big)) || name == "" ||
		len(l.Data) >= len(big) || !bytes.HasPrefix(big, l.Data) {
		t.Fatalf("dead letter: %s=%q, %s=%q, %d bytes of %d; want the marker, the object and a prefix",
			sender.HeaderTruncated, l.Header.Get(sender.HeaderTruncated), sender.HeaderBodyObject, name, len(l.Data), len(big))
	}
	store, err := e.js.ObjectStore(t.Context(), sender.BucketBodies)
	if err != nil {
		t.Fatal(err)
	}
	if whole, err := store.GetBytes(t.Context(), name); err != nil || !bytes.Equal(whole, big) {
		t.Fatalf("%s/%s: %d bytes, %v; want the whole original", sender.BucketBodies, name, len(whole), err)
	}

	res, err := sender.Redrive(t.Context(), e.js, sender.RedriveOptions{Reasons: []string{sender.ReasonInvalid}})
	if err != nil || res.Republished != 1 {
		t.Fatalf("Redrive = %+v, %v; want 1 republished", res, err)
	}
	conv, err := e.js.Stream(t.Context(), sender.StreamConversions)
	if err != nil {
		t.Fatal(err)
	}
	back, err := conv.GetLastMsgForSubject(t.Context(), "conversions.whatsapp")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Data, big) || back.Header.Get(sender.HeaderTruncated) != "" {
		t.Errorf("redriven message: %d bytes (marker %q); want the whole %d-byte original", len(back.Data), back.Header.Get(sender.HeaderTruncated), len(big))
	}
	if _, err := store.GetInfo(t.Context(), name); err == nil {
		t.Errorf("%s/%s still there after the redrive", sender.BucketBodies, name)
	}
	// Still invalid, it is dead-lettered again: once.
	e.waitDLQ(30*time.Second, 1)
	e.settled(20 * time.Second)
	if n := len(e.dlq()); n != 1 {
		t.Errorf("%d dead letters after the redrive; want 1", n)
	}
}
