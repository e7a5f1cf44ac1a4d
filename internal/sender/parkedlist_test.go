package sender

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
)

// ListParked counts a business's parked conversions and lists the oldest
// by event id, leaving them where they are.
func TestListParked(t *testing.T) {
	js, err := jetstream.New(natstest.RunJetStream(t).Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if n, list, err := ListParked(ctx, js, "b1", 10); err != nil || n != 0 || list != nil {
		t.Fatalf("without PARKED: %d %v %v; want nothing", n, list, err)
	}
	if _, err := ensureStreams(ctx, js, nil, 1, 100, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	park := func(biz, id string) {
		m := nats.NewMsg(parkSubject(biz))
		m.Data = []byte(`{}`)
		m.Header.Set(HeaderEventID, id)
		m.Header.Set(HeaderPublished, "2026-12-07T10:00:00Z")
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	park("b1", "e1")
	park("b2", "x1")
	park("b1", "e2")
	park("b1", "e3")
	n, list, err := ListParked(ctx, js, "b1", 2)
	if err != nil || n != 3 || len(list) != 2 || list[0].EventID != "e1" || list[1].EventID != "e2" || list[0].PublishedAt.IsZero() {
		t.Fatalf("ListParked = %d %+v %v; want 3, e1 and e2", n, list, err)
	}
	if n, _, _ := ListParked(ctx, js, "b1", 2); n != 3 {
		t.Errorf("after listing: %d parked; want them left (3)", n)
	}
}
