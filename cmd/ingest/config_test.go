package main

import (
	"io"
	"strings"
	"testing"
)

// One run names every missing required setting, REDIS_URL among them.
func TestEveryMissingSettingAtOnce(t *testing.T) {
	err := run(t.Context(), nil, func(string) string { return "" }, io.Discard, io.Discard)
	for _, want := range []string{"META_APP_SECRET", "META_VERIFY_TOKEN", "REDIS_URL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("run with nothing set = %v; want it to name %s", err, want)
		}
	}
	env := map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0"}
	err = run(t.Context(), nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || strings.Contains(err.Error(), "REDIS_URL") {
		t.Errorf("run with REDIS_URL set = %v; want an error that does not name REDIS_URL", err)
	}
}
