package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRunHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"redrive", "-h"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, env(nil), &out, &out); err != nil {
			t.Fatalf("run(%q) = %v; want nil", args, err)
		}
		if !strings.Contains(out.String(), "Usage: sender") {
			t.Errorf("run(%q) printed %q; want the usage", args, out.String())
		}
	}
}

func TestRunConfigErrors(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "NATS_URL is required"},
		{nil, map[string]string{"NATS_URL": "nats://127.0.0.1:1"}, "REDIS_URL is required"},
		{[]string{"redrive", "-reason", "in_doubt"}, map[string]string{"NATS_URL": "nats://127.0.0.1:1"}, "in_doubt needs -force"},
		{[]string{"redrive"}, map[string]string{"NATS_URL": "nats://127.0.0.1:1"}, "select with -reason"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := run(context.Background(), tt.args, env(tt.env), &out, &out)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%q) = %v; want an error containing %q", tt.args, err, tt.want)
		}
	}
}
