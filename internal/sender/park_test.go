package sender

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
)

func TestParkSubject(t *testing.T) {
	for _, b := range []string{"109876543210987", "pa", "a.b", "x*y>z", "_x", "sp ace"} {
		subj := parkSubject(b)
		if got := parkedBusiness(subj); got != b {
			t.Errorf("parkedBusiness(parkSubject(%q) = %q) = %q", b, subj, got)
		}
		if tok := subj[len("parked."):]; len(tok) == 0 || containsAny(tok, ".*> ") {
			t.Errorf("parkSubject(%q) = %q: not a single subject token", b, subj)
		}
	}
}

func containsAny(s, chars string) bool {
	for i := range len(s) {
		for j := range len(chars) {
			if s[i] == chars[j] {
				return true
			}
		}
	}
	return false
}

// TestUnparkExpired: a business paused longer than Meta's 7 days gets its
// parked messages sent back all the same (they then become dead letters
// expired) instead of aging out of PARKED unseen; newer ones stay parked.
func TestUnparkExpired(t *testing.T) {
	ns := natstest.RunJetStream(t)
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := ensureStreams(ctx, js, nil, 1, 100, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{js: js, log: zap.NewNop(), m: m, now: time.Now}
	park := func(id string) {
		msg := nats.NewMsg(parkSubject("pa"))
		msg.Data = []byte(`{}`)
		msg.Header.Set(HeaderSubject, "conversions.messenger")
		msg.Header.Set(HeaderMsgID, id)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	park("old-1")
	park("old-2")
	stream, err := js.Stream(ctx, StreamParked)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing is old yet.
	if err := s.unparkExpired(ctx, stream, "pa"); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, js, StreamConversions); n != 0 {
		t.Fatalf("%d messages sent back before they were old", n)
	}
	// Seven days after a moment between them (by the server's stored
	// times), the two are old and one parked after that moment is not.
	park("new-1")
	cut := between(t, stream, 2, 3)
	s.now = func() time.Time { return cut.Add(7 * 24 * time.Hour) }
	if err := s.unparkExpired(ctx, stream, "pa"); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, js, StreamConversions); n != 2 {
		t.Errorf("%d messages sent back to CONVERSIONS; want the 2 parked before the cutoff", n)
	}
	if n := streamMsgs(t, js, StreamParked); n != 1 {
		t.Errorf("%d messages left in PARKED; want the newer 1", n)
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestSharedKeyNames pins the key names README's "Operating" section tells
// operators to set after fixing a token.
func TestSharedKeyNames(t *testing.T) {
	if got := pauseKey("123"); got != "ctm:biz:{123}:paused" {
		t.Errorf("pauseKey = %q; README documents ctm:biz:{<business id>}:paused", got)
	}
	if got := okKey("123"); got != "ctm:biz:{123}:ok" {
		t.Errorf("okKey = %q; README documents ctm:biz:{<business id>}:ok", got)
	}
}

// between is a moment after stream's message a was stored and before b was.
func between(t *testing.T, stream jetstream.Stream, a, b uint64) time.Time {
	t.Helper()
	ma, err := stream.GetMsg(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := stream.GetMsg(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if !mb.Time.After(ma.Time) {
		t.Fatalf("message %d stored at %v, not after message %d at %v", b, mb.Time, a, ma.Time)
	}
	return ma.Time.Add(mb.Time.Sub(ma.Time) / 2)
}
