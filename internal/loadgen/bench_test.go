package loadgen

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/ingest"
	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// These benchmarks exist for profiles (go test -cpuprofile): ingest's
// handler in process, once called directly and once over loopback HTTP with
// this package's generator, next to the bare echo baseline. Their ns/op
// ratio is an in-process cousin of `loadgen ingest`'s ratio; BENCHMARKS.md
// shows how to read the profile.

const benchSecret = "bench-secret"

func newBenchIngest(b *testing.B) http.Handler {
	b.Helper()
	rs := redistest.Start(b)
	rdb, err := attribution.NewClient(rs.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rdb.Close() })
	srv, err := ingest.New(ingest.Config{AppSecrets: []string{benchSecret}, VerifyToken: "v"},
		ingest.Deps{Logger: zap.NewNop(), Store: attribution.NewStore(rdb, 0)})
	if err != nil {
		b.Fatal(err)
	}
	return srv.Handler()
}

func benchPool(b *testing.B, n int) *Pool {
	b.Helper()
	mix, _ := ParseMix(DefaultMix)
	return NewPool(NewBodyGen(8), mix, []byte(benchSecret), 0, min(max(n, 1), 200000), time.Now())
}

// BenchmarkHandler calls the handlers directly: what one webhook costs
// without the network.
func BenchmarkHandler(b *testing.B) {
	for _, tc := range []struct {
		name string
		h    func(*testing.B) http.Handler
	}{{"bare", func(*testing.B) http.Handler { return BareHandler() }}, {"ingest", newBenchIngest}} {
		b.Run(tc.name, func(b *testing.B) {
			h := tc.h(b)
			p := benchPool(b, b.N)
			b.ReportAllocs()
			b.SetParallelism(32) // keep Redis round trips overlapping, as 64 connections do
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s := p.Item(p.Next())
					req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(s.Body))
					req.Header.Set("X-Hub-Signature-256", s.Signature)
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Errorf("status %d", w.Code)
						return
					}
				}
			})
		})
	}
}

// BenchmarkHTTP serves the handlers on loopback and drives them with 64
// connections of the harness's generator, as `loadgen ingest` does.
func BenchmarkHTTP(b *testing.B) {
	for _, tc := range []struct {
		name string
		h    func(*testing.B) http.Handler
	}{{"bare", func(*testing.B) http.Handler { return BareHandler() }}, {"ingest", newBenchIngest}} {
		b.Run(tc.name, func(b *testing.B) {
			srv := httptest.NewServer(tc.h(b))
			defer srv.Close()
			e, err := ParseEndpoint(srv.URL + "/webhook")
			if err != nil {
				b.Fatal(err)
			}
			p := benchPool(b, b.N)
			reqs := make([][]byte, p.Len())
			for i := range reqs {
				reqs[i] = BuildRequest(e, p.Item(i))
			}
			var left atomic.Int64
			left.Store(int64(b.N))
			var bad atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for range 64 {
				wg.Go(func() {
					c := newConn(e.Addr, 5*time.Second)
					defer c.close()
					for left.Add(-1) >= 0 {
						if st, err := c.do(reqs[p.Next()]); err != nil || st != http.StatusOK {
							bad.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if bad.Load() > 0 {
				b.Errorf("%d of %d requests failed", bad.Load(), b.N)
			}
		})
	}
}

// BenchmarkSender drains b.N pre-published conversions through the real
// sender (in process) into the Sink, with a real redis-server and an
// in-process JetStream: a profile of it shows where the sender's CPU goes.
func BenchmarkSender(b *testing.B) {
	rs := redistest.Start(b)
	ns := natstest.RunJetStream(b)
	rdb, err := attribution.NewClient(rs.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rdb.Close() })
	mix, _ := ParseMix(DefaultMix)
	gen := &ConvGen{Bodies: NewBodyGen(8), Mix: mix, Contexts: min(max(b.N, 1), 100000)}
	store := attribution.NewStore(rdb, 0)
	if err := gen.Seed(b.Context(), store); err != nil {
		b.Fatal(err)
	}
	sink := NewSink()
	b.Cleanup(sink.Close)
	js, err := jetstream.New(ns.Connect(b), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	cfg := sender.DefaultConfig()
	cfg.GraphBase, cfg.AccessToken = sink.URL(), "token"
	start := func() (stop func()) {
		svc, err := sender.New(cfg, sender.Deps{Log: zap.NewNop(), JS: js, Store: store, Redis: rdb})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(b.Context())
		var wg sync.WaitGroup
		wg.Go(func() { svc.Run(ctx) }) //nolint:errcheck // nil on cancel
		return func() { cancel(); wg.Wait() }
	}
	wait := func(t *Tracker) {
		select {
		case <-t.Done():
		case <-time.After(5 * time.Minute):
			b.Fatalf("%d of %d conversions arrived", t.Stats().Received, t.Stats().Received+t.Stats().Missing)
		}
	}
	msgs := func(prefix string, n int) []*nats.Msg {
		out := make([]*nats.Msg, n)
		for i := range out {
			out[i] = gen.Message("conversions", prefix, i, time.Now())
		}
		return out
	}
	b.StopTimer()
	// A first run creates the streams and the consumer and warms up.
	stop := start()
	warm := NewTracker("warm-", 100)
	sink.Attach(warm)
	if _, err := (&SenderBench{JS: js, Timeout: time.Minute}).waitForSender(b.Context()); err != nil {
		b.Fatal(err)
	}
	if err := PublishAll(b.Context(), js, msgs("warm-", 100)); err != nil {
		b.Fatal(err)
	}
	wait(warm)
	stop()
	// The timed run drains a full stream, as `loadgen sender` does.
	t := NewTracker("bench-", b.N)
	sink.Attach(t)
	if err := PublishAll(b.Context(), js, msgs("bench-", b.N)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.StartTimer()
	stop = start()
	wait(t)
	b.StopTimer()
	stop()
}
