package sender

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestNoteAckPending: the gauges follow the consumer, and the warning comes
// once when ack pending nears MaxAckPending, not on every poll, and again
// only after it fell well below.
func TestNoteAckPending(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{log: zap.New(core), m: m, now: time.Now}
	near := false
	for _, step := range []struct {
		ack       int
		wantNear  bool
		wantWarns int
	}{
		{10, false, 0}, {79, false, 0}, {85, true, 1}, {99, true, 1}, {60, true, 1}, {30, false, 1}, {90, true, 2},
	} {
		near = s.noteAckPending(step.ack, 100, near)
		warns := logs.FilterMessageSnippet("near MaxAckPending").Len()
		if near != step.wantNear || warns != step.wantWarns {
			t.Errorf("ack pending %d of 100: near %v, %d warnings; want %v, %d", step.ack, near, warns, step.wantNear, step.wantWarns)
		}
		if got := gaugeValue(t, m.ackPending); got != float64(step.ack) {
			t.Errorf("sender_consumer_ack_pending = %v; want %d", got, step.ack)
		}
	}
	if got := gaugeValue(t, m.maxAckPending); got != 100 {
		t.Errorf("sender_consumer_max_ack_pending = %v; want 100", got)
	}
	if logs.FilterMessageSnippet("well below").Len() != 1 {
		t.Errorf("want one notice when ack pending fell well below")
	}
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
