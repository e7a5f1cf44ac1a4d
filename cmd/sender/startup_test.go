package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/internal/startup/startuptest"
)

// TestRunWaitsForServers: the sender started before Redis and NATS keeps
// running, answers /readyz with 503 naming what it waits for (REDIS_URL,
// then NATS_URL, whose log says -js while NATS has no JetStream), and becomes
// ready once they run; it stops cleanly when cancelled.
func TestRunWaitsForServers(t *testing.T) {
	redisPort, natsPort, metricsPort := redistest.FreePort(t), redistest.FreePort(t), redistest.FreePort(t)
	metrics := "127.0.0.1:" + strconv.Itoa(metricsPort)
	e := env(map[string]string{
		"NATS_URL": "nats://127.0.0.1:" + strconv.Itoa(natsPort), "REDIS_URL": "redis://127.0.0.1:" + strconv.Itoa(redisPort),
		"CAPI_DRYRUN_FILE": filepath.Join(t.TempDir(), "dry.jsonl"), "METRICS_ADDR": metrics,
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var logs startuptest.LockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, e, io.Discard, &logs) }()

	startuptest.Eventually(t, "REDIS_URL in the log", func() bool { return strings.Contains(logs.String(), "waiting for Redis (REDIS_URL)") })
	if code, body := startuptest.Readyz(metrics); code != http.StatusServiceUnavailable || !strings.Contains(body, "REDIS_URL") {
		t.Fatalf("/readyz before Redis: %d %q", code, body)
	}
	redistest.StartOn(t, redisPort)

	// A NATS without JetStream first: the log says to start it with -js.
	plain := natstest.RunWith(t, func(o *server.Options) { o.Port = natsPort; o.JetStream = false })
	startuptest.Eventually(t, "-js advice", func() bool { return strings.Contains(logs.String(), "start nats-server with -js") })
	if code, body := startuptest.Readyz(metrics); code != http.StatusServiceUnavailable || !strings.Contains(body, "NATS_URL") {
		t.Fatalf("/readyz before JetStream: %d %q", code, body)
	}
	plain.Shutdown()
	natstest.RunWith(t, func(o *server.Options) { o.Port = natsPort })
	startuptest.Eventually(t, "/readyz 200", func() bool { code, _ := startuptest.Readyz(metrics); return code == http.StatusOK })
	startuptest.Eventually(t, "sender started", func() bool { return strings.Contains(logs.String(), "sender started") })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}
