package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/ingest"
	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

// BenchmarkReplicasOnOff measures what REDIS_MIN_REPLICAS=1 costs against
// 0 on a primary with one replica (issue 24; target ≥ 0.8 each): ingest's
// webhooks/s (64 connections over loopback, b.N webhooks a round) and the
// sender's conversions/s (b.N conversions drained into the Sink a round),
// the two settings alternating in the same run, 3 rounds each. The WAIT
// rides on the writes the coalescers already batch (ingest's coalescer, the
// sender's ledger flushes), so it costs one replica round trip per batch,
// not per webhook or conversion.
//
//	go test -run x -bench ReplicasOnOff -benchtime 20000x ./internal/loadgen
func BenchmarkReplicasOnOff(b *testing.B) {
	primary := redistest.Start(b)
	redistest.StartReplica(b, primary)
	clients := map[int]redis.UniversalClient{}
	for _, min := range []int{0, 1} {
		rdb, err := attribution.NewClient(primary.URL())
		if err != nil {
			b.Fatal(err)
		}
		if err := replicas.Install(rdb, replicas.Config{Min: min, Timeout: 500 * time.Millisecond}, nil); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { rdb.Close() })
		clients[min] = rdb
	}
	sb := newSenderRounds(b, clients[0])
	const rounds = 3
	rates := map[string][]float64{}
	b.StopTimer()
	for r := range rounds {
		order := []int{0, 1}
		if r%2 == 1 {
			order = []int{1, 0}
		}
		for _, min := range order {
			name := map[int]string{0: "0", 1: "1"}[min]
			rates["ingest"+name] = append(rates["ingest"+name], ingestRound(b, clients[min], min, b.N))
			rates["sender"+name] = append(rates["sender"+name], sb.round(b, clients[min], min, b.N))
		}
	}
	med := func(k string) float64 {
		s := append([]float64(nil), rates[k]...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	b.ReportMetric(med("ingest1"), "ingest_min1_webhooks/s")
	b.ReportMetric(med("ingest0"), "ingest_min0_webhooks/s")
	b.ReportMetric(med("ingest1")/med("ingest0"), "ingest_1/0")
	b.ReportMetric(med("sender1"), "sender_min1_conversions/s")
	b.ReportMetric(med("sender0"), "sender_min0_conversions/s")
	b.ReportMetric(med("sender1")/med("sender0"), "sender_1/0")
	b.Logf("webhooks/s with 1: %v, with 0: %v; conversions/s with 1: %v, with 0: %v",
		rates["ingest1"], rates["ingest0"], rates["sender1"], rates["sender0"])
}

// ingestRound serves an ingest on rdb and drives n webhooks through it with
// 64 connections; it returns webhooks/s.
func ingestRound(b *testing.B, rdb redis.UniversalClient, min, n int) float64 {
	cfg := ingest.Config{AppSecrets: []string{benchSecret}, VerifyToken: "v",
		Replicas: replicas.Config{Min: min, Timeout: 500 * time.Millisecond}}
	srv, err := ingest.New(cfg, ingest.Deps{Logger: zap.NewNop(), Store: attribution.NewStore(rdb, 0)})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	e, err := ParseEndpoint(hs.URL + "/webhook")
	if err != nil {
		b.Fatal(err)
	}
	p := benchPool(b, n)
	reqs := make([][]byte, p.Len())
	for i := range reqs {
		reqs[i] = BuildRequest(e, p.Item(i))
	}
	var left, bad atomic.Int64
	left.Store(int64(n))
	start := time.Now()
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
	took := time.Since(start)
	if bad.Load() > 0 {
		b.Fatalf("REDIS_MIN_REPLICAS=%d: %d of %d webhooks not answered 200", min, bad.Load(), n)
	}
	return float64(n) / took.Seconds()
}

// senderRounds drains conversions through a sender, one round at a time,
// on one JetStream and one seeded set of contexts.
type senderRounds struct {
	js   jetstream.JetStream
	gen  *ConvGen
	sink *Sink
	seq  int
}

func newSenderRounds(b *testing.B, rdb redis.UniversalClient) *senderRounds {
	ns := natstest.RunJetStream(b)
	mix, _ := ParseMix(DefaultMix)
	gen := &ConvGen{Bodies: NewBodyGen(8), Mix: mix, Contexts: min(max(b.N, 1), 100000)}
	if err := gen.Seed(b.Context(), attribution.NewStore(rdb, 0)); err != nil {
		b.Fatal(err)
	}
	sink := NewSink()
	b.Cleanup(sink.Close)
	js, err := jetstream.New(ns.Connect(b), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	return &senderRounds{js: js, gen: gen, sink: sink}
}

// round publishes n conversions, then starts a sender on rdb and returns
// conversions/s from its start to the last one at the Sink.
func (s *senderRounds) round(b *testing.B, rdb redis.UniversalClient, min, n int) float64 {
	s.seq++
	prefix := "r" + string(rune('a'+s.seq)) + "-"
	t := NewTracker(prefix, n)
	s.sink.Attach(t)
	msgs := make([]*nats.Msg, n)
	for i := range msgs {
		msgs[i] = s.gen.Message("conversions", prefix, i, time.Now())
	}
	cfg := sender.DefaultConfig()
	cfg.GraphBase, cfg.AccessToken = s.sink.URL(), "token"
	cfg.Replicas = replicas.Config{Min: min, Timeout: 500 * time.Millisecond}
	svc, err := sender.New(cfg, sender.Deps{Log: zap.NewNop(), JS: s.js, Store: attribution.NewStore(rdb, 0), Redis: rdb})
	if err != nil {
		b.Fatal(err)
	}
	if s.seq > 1 { // the first sender creates the stream
		if err := PublishAll(b.Context(), s.js, msgs); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { svc.Run(ctx) }) //nolint:errcheck // nil on cancel
	defer wg.Wait()
	defer cancel()
	if s.seq == 1 {
		if _, err := (&SenderBench{JS: s.js, Timeout: time.Minute}).waitForSender(b.Context()); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if err := PublishAll(b.Context(), s.js, msgs); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-t.Done():
	case <-time.After(5 * time.Minute):
		b.Fatalf("REDIS_MIN_REPLICAS=%d: %d of %d conversions arrived", min, t.Stats().Received, n)
	}
	return float64(n) / time.Since(start).Seconds()
}
