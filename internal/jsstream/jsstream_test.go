package jsstream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ctmpipe/ctmpipe/internal/jsstream"
	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/settings"
)

// TestEnsureReplicatedOnCluster: on a 3-node cluster a stream is created
// with the replicas asked for; an existing stream with another count is
// left as it is and the warning names the stream, both counts and the
// command that changes it.
func TestEnsureReplicatedOnCluster(t *testing.T) {
	nodes := natstest.RunCluster(t, 3)
	js, err := jetstream.New(nodes[1].Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	core, logs := observer.New(zap.WarnLevel)
	log := zap.New(core)

	s, err := jsstream.Ensure(ctx, js, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3}, log)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("replicas = %d, peers besides the leader = %d; want 3 and 2", info.Config.Replicas, len(info.Cluster.Replicas))
	}
	if logs.Len() != 0 {
		t.Fatalf("warned on a matching stream: %v", logs.All())
	}

	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OLD", Subjects: []string{"old.>"}, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	s, err = jsstream.Ensure(ctx, js, jetstream.StreamConfig{Name: "OLD", Subjects: []string{"old.>"}, Replicas: 3}, log)
	if err != nil {
		t.Fatal(err)
	}
	if info, err = s.Info(ctx); err != nil || info.Config.Replicas != 1 {
		t.Fatalf("existing stream changed: replicas %d, %v", info.Config.Replicas, err)
	}
	if logs.Len() != 1 {
		t.Fatalf("want one warning, got %d", logs.Len())
	}
	e := logs.All()[0]
	if !strings.Contains(e.Message, "nats stream edit OLD --replicas 3") || !strings.Contains(e.Message, "STREAM_REPLICAS=1") {
		t.Fatalf("warning does not say what to do: %q", e.Message)
	}
	if f := e.ContextMap(); f["stream"] != "OLD" || f["replicas"] != int64(1) || f["stream_replicas"] != int64(3) {
		t.Fatalf("warning fields: %v", f)
	}
}

// TestEnsureWaitsForPeers: while the third of three servers of a new
// cluster has not joined yet, an R3 stream cannot be placed (no meta
// leader, then no suitable peers); Ensure waits, warns with what is
// missing, and creates the stream once the server is up, instead of
// failing the service's start (CI once saw "no suitable peers for
// placement" just after a cluster started).
func TestEnsureWaitsForPeers(t *testing.T) {
	nodes := natstest.RunClusterPartly(t, 3, 2)
	js, err := jetstream.New(nodes[0].Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	type result struct {
		s   jetstream.Stream
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := jsstream.Ensure(t.Context(), js, jetstream.StreamConfig{Name: "LATE", Subjects: []string{"late.>"}, Replicas: 3}, zap.New(core))
		done <- result{s, err}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for logs.FilterMessageSnippet("waiting for JetStream to").Len() == 0 {
		select {
		case r := <-done:
			t.Fatalf("Ensure returned before the third server was back: %v", r.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no warning while the stream could not be placed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if e := logs.All()[0]; !strings.Contains(e.Message, "STREAM_REPLICAS=3") || e.ContextMap()["stream"] != "LATE" {
		t.Fatalf("warning does not say what is missing: %q %v", e.Message, e.ContextMap())
	}
	nodes[2].Start()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.s.CachedInfo().Config.Replicas; got != 3 {
		t.Fatalf("replicas %d", got)
	}
}

// TestEnsureSingleServer: R1 on one server, created once; a second Ensure
// returns the same stream without a warning.
func TestEnsureSingleServer(t *testing.T) {
	ns := natstest.RunJetStream(t)
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	cfg := jetstream.StreamConfig{Name: "ONE", Subjects: []string{"one.>"}, Replicas: 1}
	for range 2 {
		s, err := jsstream.Ensure(t.Context(), js, cfg, zap.New(core))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.Replicas; got != 1 {
			t.Fatalf("replicas %d", got)
		}
	}
	if logs.Len() != 0 {
		t.Fatalf("warned: %v", logs.All())
	}
	// R3 on one server is refused by NATS, and the error names the stream.
	_, err = jsstream.Ensure(t.Context(), js, jetstream.StreamConfig{Name: "THREE", Subjects: []string{"three.>"}, Replicas: 3}, nil)
	if err == nil || !strings.Contains(err.Error(), "THREE") {
		t.Fatalf("R3 on one server: %v", err)
	}
}

func TestReplicasSetting(t *testing.T) {
	for in, want := range map[string]int{"": 1, "1": 1, "3": 3, "5": 5, "0": 0, "6": 0, "x": 0} {
		v, err := settings.Parse("t", nil, func(k string) string {
			if k == jsstream.Env {
				return in
			}
			return ""
		}, []settings.Setting{jsstream.Setting()})
		if err != nil {
			t.Fatal(err)
		}
		got, err := jsstream.Replicas(v)
		if want == 0 {
			if err == nil || !strings.Contains(err.Error(), "STREAM_REPLICAS") {
				t.Errorf("%q: err %v, want one naming STREAM_REPLICAS", in, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	// The flag of the same meaning.
	v, err := settings.Parse("t", []string{"-stream-replicas=3"}, func(string) string { return "" }, []settings.Setting{jsstream.Setting()})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := jsstream.Replicas(v); n != 3 || err != nil {
		t.Fatalf("flag: %d %v", n, err)
	}
}
