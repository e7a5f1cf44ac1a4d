package autoevents

import (
	"context"
	"strings"
	"testing"

	"github.com/ctmpipe/ctmpipe/internal/settings"
)

func TestConfigFrom(t *testing.T) {
	tests := []struct {
		env, flag string
		want      bool
		err       string
	}{
		{"", "", false, ""},
		{"on", "", true, ""},
		{"off", "", false, ""},
		{"", "-automatic-events", true, ""},
		{"on", "-automatic-events=off", false, ""},
		{"maybe", "", false, "config: AUTOMATIC_EVENTS: want on/off"},
	}
	for _, tt := range tests {
		t.Run(tt.env+tt.flag, func(t *testing.T) {
			var args []string
			if tt.flag != "" {
				args = []string{tt.flag}
			}
			getenv := func(k string) string {
				if k == "AUTOMATIC_EVENTS" {
					return tt.env
				}
				return ""
			}
			v, err := settings.Parse("ingest", args, getenv, Settings())
			if err != nil {
				t.Fatal(err)
			}
			c := ConfigFrom(v)
			if tt.err != "" {
				if v.Err() == nil || !strings.HasPrefix(v.Err().Error(), tt.err) {
					t.Fatalf("Err = %v; want %q", v.Err(), tt.err)
				}
				return
			}
			if v.Err() != nil || c.On != tt.want || !sameAnswer(c, tt.want) {
				t.Errorf("ConfigFrom = %+v, %v; want On %v", c, v.Err(), tt.want)
			}
		})
	}
}

func sameAnswer(c Config, want bool) bool {
	on, err := c.Enabled(context.Background(), "any")
	return err == nil && on == want
}
