package attribution

import (
	"testing"
	"time"
)

func TestClickTime(t *testing.T) {
	received := t0
	tests := []struct {
		name  string
		click time.Time
		want  time.Time
	}{
		{"no timestamp", time.Time{}, received},
		{"in the past", received.Add(-time.Hour), received.Add(-time.Hour)},
		{"slightly ahead", received.Add(MaxClockSkew), received.Add(MaxClockSkew)},
		{"too far ahead", received.Add(MaxClockSkew + time.Second), received},
		{"years ahead", received.AddDate(30, 0, 0), received},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ClickTime(tt.click, received); !got.Equal(tt.want) {
				t.Errorf("ClickTime(%v, %v) = %v; want %v", tt.click, received, got, tt.want)
			}
		})
	}
}
