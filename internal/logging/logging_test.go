package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ctmpipe/ctmpipe/internal/logging"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
)

// lines decodes every JSON line of b.
func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// TestFormat: ISO-8601 time, durations as strings, the level honoured.
func TestFormat(t *testing.T) {
	var b bytes.Buffer
	log := logging.New(&b, zapcore.InfoLevel)
	log.Debug("hidden")
	log.Info("shown", zap.Duration("took", 1500*time.Millisecond))
	got := lines(t, &b)
	if len(got) != 1 {
		t.Fatalf("want the info line only, got %v", got)
	}
	ts, _ := got[0]["ts"].(string)
	if _, err := time.Parse("2006-01-02T15:04:05.000Z0700", ts); err != nil {
		t.Errorf("ts %v is not ISO-8601: %v", got[0]["ts"], err)
	}
	if got[0]["took"] != "1.5s" {
		t.Errorf("duration %v, want \"1.5s\"", got[0]["took"])
	}
}

// TestSample: past 10 lines a second with one message, most are dropped.
func TestSample(t *testing.T) {
	var b bytes.Buffer
	log := logging.New(&b, zapcore.InfoLevel, logging.Sample)
	for range 200 {
		log.Info("same")
	}
	if n := len(lines(t, &b)); n >= 20 {
		t.Fatalf("%d lines kept of 200", n)
	}
}

// TestRedisLogRouted: go-redis's own dial failure message (stderr by
// default) arrives as a JSON debug line.
func TestRedisLogRouted(t *testing.T) {
	var b bytes.Buffer
	logging.New(&b, zapcore.DebugLevel)
	port := redistest.FreePort(t) // nothing listens
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + itoa(port), MaxRetries: 0})
	defer c.Close()
	_ = c.Ping(context.Background()).Err()
	found := false
	for _, l := range lines(t, &b) {
		if l["logger"] == "redis" && l["level"] == "debug" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no go-redis line through zap: %q", b.String())
	}
}

// TestNATSAsyncErrorRouted: a slow consumer, which nats.go prints on
// stderr by default, is a zap warning.
func TestNATSAsyncErrorRouted(t *testing.T) {
	var b syncBuf
	log := logging.New(&b, zapcore.InfoLevel)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats not ready")
	}
	nc, err := nats.Connect(ns.ClientURL(), logging.NATS(log)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	block := make(chan struct{})
	defer close(block)
	sub, err := nc.Subscribe("slow", func(*nats.Msg) { <-block })
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.SetPendingLimits(1, 1<<20)
	for range 10 {
		_ = nc.Publish("slow", []byte("x"))
	}
	_ = nc.Flush()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.String(), "nats async error") {
		if time.Now().After(deadline) {
			t.Fatalf("no async error line: %q", b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(b.String(), `"subject":"slow"`) {
		t.Fatalf("subject missing: %q", b.String())
	}
}

// TestServerLogger: the embedded server's notices are info lines.
func TestServerLogger(t *testing.T) {
	// Notices are at debug (at info the server's banner would bury the
	// all-in-one's): routed, and absent at info.
	var quiet syncBuf
	qs, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	qs.SetLoggerV2(logging.Server(logging.New(&quiet, zapcore.InfoLevel)), false, false, false)
	go qs.Start()
	if !qs.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats not ready")
	}
	qs.Shutdown()
	if strings.Contains(quiet.String(), "Server is ready") {
		t.Errorf("the server's notices are logged at info: %q", quiet.String())
	}

	var b syncBuf
	log := logging.New(&b, zapcore.DebugLevel)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.SetLoggerV2(logging.Server(log), false, false, false)
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats not ready")
	}
	if !strings.Contains(b.String(), `"logger":"nats-server"`) || !strings.Contains(b.String(), "Server is ready") {
		t.Fatalf("server log not routed: %q", b.String())
	}
}
