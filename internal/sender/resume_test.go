package sender

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
)

// TestResumerClearsSharedPause holds what the admin API's resume does: the
// shared pause is gone, the business marked as working (so every sender's
// next unpark round sends its parked messages back whole), and the parked
// count is that business's only.
func TestResumerClearsSharedPause(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	js, err := jetstream.New(natstest.RunJetStream(t).Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: StreamParked, Subjects: []string{SubjectParked}}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"111", "111", "222"} {
		if _, err := js.Publish(ctx, parkSubject(b), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	rdb.Set(ctx, pauseKey("111"), "1", 0)

	r := Resumer{Redis: rdb, JS: js}
	res, err := r.Resume(ctx, "111")
	if err != nil {
		t.Fatal(err)
	}
	if !res.WasPaused || res.Parked != 2 {
		t.Errorf("Resume = %+v; want WasPaused, Parked 2", res)
	}
	if n := rdb.Exists(ctx, pauseKey("111")).Val(); n != 0 {
		t.Error("pause key still set")
	}
	if ttl := rdb.PTTL(ctx, okKey("111")).Val(); ttl <= 0 {
		t.Errorf("ok key TTL = %v; want set with a TTL", ttl)
	}
	if res, err := r.Resume(ctx, "333"); err != nil || res.WasPaused || res.Parked != 0 {
		t.Errorf("Resume of a business never paused = %+v, %v; want zero", res, err)
	}
}
