package sender

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/notify"
)

// dead_letters.rising is told once a window, by the settle whose dead
// letters cross NOTIFY_DEAD_LETTERS_THRESHOLD, and names the business, the
// count and the last reason only.
func TestDeadLettersRising(t *testing.T) {
	js, err := jetstream.New(natstest.RunJetStream(t).Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	now := time.Date(2026, 12, 7, 10, 20, 0, 0, time.UTC)
	s := &Service{js: js, rdb: rdb, log: zap.NewNop(), now: func() time.Time { return now }}
	s.cfg.Notify = notify.Config{URLs: []string{"http://127.0.0.1:1/hook"}, Secret: "x",
		DeadLetterThreshold: 5, DeadLetterWindow: time.Hour}
	if err := s.newNotify(nil); err != nil {
		t.Fatal(err)
	}
	settle := func(biz string, n int) {
		var dc deadCounts
		for range n {
			dc.add(biz, "unattributed")
		}
		s.countDeadLetters(dc)
	}
	settle("b1", 3) // 3: below
	settle("b2", 2)
	settle("b1", 3) // 6: crosses
	settle("b1", 4) // 10: told already this window
	stream, err := js.Stream(t.Context(), notify.StreamNotify)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("NOTIFY holds %d notifications; want 1", info.State.Msgs)
	}
	m, err := stream.GetMsg(t.Context(), info.State.FirstSeq)
	if err != nil {
		t.Fatal(err)
	}
	var n notify.Notification
	if err := json.Unmarshal(m.Data, &n); err != nil {
		t.Fatal(err)
	}
	if n.Type != notify.TypeDeadLettersRising || n.BusinessID != "b1" || n.DeadLetters == nil ||
		n.DeadLetters.Count != 6 || n.DeadLetters.LastReason != "unattributed" {
		t.Errorf("notification = %s; want b1's 6 unattributed", m.Data)
	}
}
