package loadgen

import (
	"testing"
	"time"
)

func TestScheduleDue(t *testing.T) {
	start := time.Unix(1000, 0)
	tests := []struct {
		rate float64
		i    uint64
		want time.Duration
	}{
		{1000, 0, 0},
		{1000, 1, time.Millisecond},
		{1000, 1000, time.Second},
		{3, 1, 333333333},
		{3, 2, 666666667},
		{3, 3, time.Second},
		{7500, 7500 * 3600, time.Hour}, // no drift over an hour
		{0.5, 1, 2 * time.Second},
	}
	for _, tt := range tests {
		s := Schedule{Start: start, Rate: tt.rate}
		if got := s.Due(tt.i).Sub(start); got != tt.want {
			t.Errorf("rate %v: Due(%d) = start+%v; want start+%v", tt.rate, tt.i, got, tt.want)
		}
	}
}

func TestScheduleCount(t *testing.T) {
	tests := []struct {
		rate float64
		d    time.Duration
		want uint64
	}{
		{1000, time.Second, 1000},     // due at 0..999ms
		{1000, time.Second + 1, 1001}, // 1000 is due at exactly 1s, inside
		{1000, 0, 0},
		{3, time.Second, 3}, // 0, 333ms, 667ms
		{3, 333333333, 1},   // the second is due exactly at d: not inside
		{3, 333333334, 2},
		{0.5, 10 * time.Second, 5}, // 0, 2, 4, 6, 8s
		{2000, 10 * time.Second, 20000},
	}
	for _, tt := range tests {
		s := Schedule{Rate: tt.rate}
		if got := s.Count(tt.d); got != tt.want {
			t.Errorf("rate %v: Count(%v) = %d; want %d", tt.rate, tt.d, got, tt.want)
		}
		// Count is the definition's boundary: the last counted is due before
		// d, the next one not.
		if n := s.Count(tt.d); n > 0 && (s.Offset(n-1) >= tt.d || s.Offset(n) < tt.d) {
			t.Errorf("rate %v: Count(%v) = %d is not the boundary", tt.rate, tt.d, n)
		}
	}
}
