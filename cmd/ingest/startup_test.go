package main

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/internal/startup/startuptest"
)

// TestRunWaitsForServers: ingest started before Redis and NATS serves,
// answers /readyz with 503 while it waits (the log names REDIS_URL, then
// NATS_URL) and 200 once both run.
func TestRunWaitsForServers(t *testing.T) {
	redisPort, natsPort, port := redistest.FreePort(t), redistest.FreePort(t), redistest.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	vals := map[string]string{
		"NATS_URL": "nats://127.0.0.1:" + strconv.Itoa(natsPort), "REDIS_URL": "redis://127.0.0.1:" + strconv.Itoa(redisPort),
		"META_APP_SECRET": "s", "META_VERIFY_TOKEN": "v", "CAPTURE": "on", "INGEST_ADDR": addr, "ADMIN_ADDR": "127.0.0.1:0",
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var logs startuptest.LockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return vals[k] }, io.Discard, &logs) }()

	startuptest.Eventually(t, "REDIS_URL in the log", func() bool { return strings.Contains(logs.String(), "waiting for Redis (REDIS_URL)") })
	startuptest.Eventually(t, "/readyz 503", func() bool { code, _ := startuptest.Readyz(addr); return code == http.StatusServiceUnavailable })
	redistest.StartOn(t, redisPort)
	startuptest.Eventually(t, "NATS_URL in the log", func() bool { return strings.Contains(logs.String(), "waiting for NATS (NATS_URL)") })
	if code, body := startuptest.Readyz(addr); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Fatalf("/readyz while NATS is away: %d %q", code, body)
	}
	natstest.RunWith(t, func(o *server.Options) { o.Port = natsPort })
	startuptest.Eventually(t, "/readyz 200", func() bool { code, _ := startuptest.Readyz(addr); return code == http.StatusOK })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}
