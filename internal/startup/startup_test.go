package startup_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/internal/startup"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

// waitLog waits until logs holds an entry whose message contains s.
func waitLog(t *testing.T, logs *observer.ObservedLogs, s string) {
	t.Helper()
	poll.CheckFor(t, 10*time.Second, func() error {
		for _, e := range logs.All() {
			if strings.Contains(e.Message, s) {
				return nil
			}
		}
		return fmt.Errorf("no log line containing %q in %v", s, logs.All())
	})
}

// TestRedisStartedLater: the wait begins before redis-server runs, the gate
// says what it waits for, the log names REDIS_URL, and once the server is
// started on that port the wait ends and the gate opens.
func TestRedisStartedLater(t *testing.T) {
	port := redistest.FreePort(t)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + itoa(port), MaxRetries: -1})
	defer rdb.Close()
	core, logs := observer.New(zap.InfoLevel)
	var g startup.Gate
	done := make(chan error, 1)
	go func() {
		err := startup.Redis(t.Context(), zap.New(core), &g, func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
		if err == nil {
			g.Open()
		}
		done <- err
	}()
	waitLog(t, logs, "waiting for Redis (REDIS_URL); retrying")
	if err := g.Err(); err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
		t.Fatalf("gate while Redis is away: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("wait ended without Redis: %v", err)
	default:
	}
	redistest.StartOn(t, port)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := g.Err(); err != nil {
		t.Fatalf("gate after Redis came: %v", err)
	}
	waitLog(t, logs, "Redis (REDIS_URL) answers")
}

// TestJetStreamStartedLater: as for Redis, with NATS started after the
// wait began.
func TestJetStreamStartedLater(t *testing.T) {
	port := redistest.FreePort(t)
	nc, err := startup.Connect("nats://127.0.0.1:" + itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	core, logs := observer.New(zap.InfoLevel)
	var g startup.Gate
	done := make(chan error, 1)
	go func() { done <- startup.JetStream(t.Context(), zap.New(core), &g, nc, js) }()
	waitLog(t, logs, "waiting for NATS (NATS_URL); retrying")
	if err := g.Err(); err == nil || !strings.Contains(err.Error(), "NATS_URL") {
		t.Fatalf("gate while NATS is away: %v", err)
	}
	natstest.RunWith(t, func(o *server.Options) { o.Port = port })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestNoJetStream: a NATS without JetStream keeps the wait going and the
// log says to start nats-server with -js; the wait ends with ctx.
func TestNoJetStream(t *testing.T) {
	ns := natstest.RunWith(t, func(o *server.Options) { o.JetStream = false })
	nc, err := startup.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- startup.JetStream(ctx, zap.New(core), nil, nc, js) }()
	waitLog(t, logs, "start nats-server with -js")
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("after cancel: %v", err)
	}
}

func TestMalformedURL(t *testing.T) {
	if _, err := startup.Connect("nats://[::1"); err == nil || !strings.Contains(err.Error(), "NATS_URL") {
		t.Fatalf("malformed URL: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// GRAPH_API_VERSION is judged at start by Meta's dates: ERROR once
// expired, WARN within 90 days of the expiry, INFO otherwise.
func TestGraphVersionLogged(t *testing.T) {
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	tests := []struct {
		version, date string
		level         zapcore.Level
		says          string
	}{
		{"v24.0", "2026-12-07", zapcore.ErrorLevel, "expired on 2026-11-10"},
		{"v25.0", "2026-12-07", zapcore.WarnLevel, "expires on 2027-02-23"},
		{"v27.0", "2026-12-07", zapcore.InfoLevel, "supported"},
		{"v99.0", "2026-12-07", zapcore.WarnLevel, "newer than this build"},
	}
	for _, tt := range tests {
		core, logs := observer.New(zap.DebugLevel)
		startup.GraphVersion(zap.New(core), tt.version, day(tt.date))
		all := logs.All()
		if len(all) != 1 || all[0].Level != tt.level || !strings.Contains(all[0].Message, tt.says) ||
			!strings.Contains(all[0].Message, "GRAPH_API_VERSION") {
			t.Errorf("%s on %s logged %v; want one %v line saying %q and naming GRAPH_API_VERSION", tt.version, tt.date, all, tt.level, tt.says)
		}
	}
}
