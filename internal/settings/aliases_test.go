package settings

import (
	"slices"
	"strings"
	"testing"
)

func TestRenameFlags(t *testing.T) {
	renames := map[string]string{"nats": "nats-url", "nats-addr": "nats-url"}
	tests := []struct{ args, want string }{
		{"-nats nats://a:4222 file", "-nats-url nats://a:4222 file"},
		{"--nats=nats://a:4222", "--nats-url=nats://a:4222"},
		{"-nats-addr=x -nats-url y", "-nats-url=x -nats-url y"},
		{"-natsy 1 -- -nats", "-natsy 1 -- -nats"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := RenameFlags(strings.Fields(tt.args), renames); !slices.Equal(got, strings.Fields(tt.want)) {
			t.Errorf("RenameFlags(%q) = %q; want %q", tt.args, got, tt.want)
		}
	}
}
