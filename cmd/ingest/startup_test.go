package main

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func readyz(addr string) (int, string) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

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
	var logs lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return vals[k] }, io.Discard, &logs) }()

	eventually(t, "REDIS_URL in the log", func() bool { return strings.Contains(logs.String(), "waiting for Redis (REDIS_URL)") })
	eventually(t, "/readyz 503", func() bool { code, _ := readyz(addr); return code == http.StatusServiceUnavailable })
	redistest.StartOn(t, redisPort)
	eventually(t, "NATS_URL in the log", func() bool { return strings.Contains(logs.String(), "waiting for NATS (NATS_URL)") })
	if code, body := readyz(addr); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Fatalf("/readyz while NATS is away: %d %q", code, body)
	}
	natstest.RunWith(t, func(o *server.Options) { o.Port = natsPort })
	eventually(t, "/readyz 200", func() bool { code, _ := readyz(addr); return code == http.StatusOK })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}
