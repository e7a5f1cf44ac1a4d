package sender_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
)

// benchUsers is how many attributed conversations the benchmark spreads its
// conversions over.
const benchUsers = 200

// publishN stores n conversions with async publishes (not timed).
func publishN(b *testing.B, js jetstream.JetStream, n int) {
	b.Helper()
	for i := range n {
		u := strconv.Itoa(i % benchUsers)
		m := nats.NewMsg("conversions.whatsapp")
		id := "bench-" + strconv.Itoa(i)
		m.Header.Set(jetstream.MsgIDHeader, id)
		m.Data = conv(id, "whatsapp", "w1", "wa-"+u)
		if _, err := js.PublishMsgAsync(m); err != nil {
			// Too many unacknowledged: let the server catch up, then retry.
			<-js.PublishAsyncComplete()
			if _, err := js.PublishMsgAsync(m); err != nil {
				b.Fatal(err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishes not acknowledged")
	}
}

// BenchmarkEndToEnd: b.N conversions from JetStream through the context join,
// the ledger and the fake Graph API (which checks every event like Meta) to
// the ack.
func BenchmarkEndToEnd(b *testing.B) { benchEndToEnd(b, nil) }

// BenchmarkEndToEndNullGraph is BenchmarkEndToEnd with a Graph API that
// takes everything without reading it: the sender's own cost, without the
// fake's checking, which shares the same CPUs.
func BenchmarkEndToEndNullGraph(b *testing.B) {
	benchEndToEnd(b, &nullGraph{})
}

type nullGraph struct {
	mu sync.Mutex
	n  int
}

func (g *nullGraph) Send(_ context.Context, _, _ string, events []capi.Event) (capi.Response, error) {
	g.mu.Lock()
	g.n += len(events)
	g.mu.Unlock()
	return capi.Response{EventsReceived: len(events)}, nil
}

func (g *nullGraph) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

func benchEndToEnd(b *testing.B, null *nullGraph) {
	configure := func(c *sender.Config) {
		c.MaxAckPending = 100000
		c.BatchSize = 1000
		c.HTTPTimeout = 10 * time.Second // a 1000-event request to the busy fake can take a while
		c.SendLease = 30 * time.Second
	}
	var deps func(*sender.Deps)
	if null != nil {
		deps = func(d *sender.Deps) { d.Poster = null }
	}
	e := newEnvDeps(b, configure, deps)
	e.stop()
	touches := make([]attribution.Touch, benchUsers)
	for i := range touches {
		touches[i] = attribution.Touch{Key: attribution.Key{Channel: "whatsapp", BusinessID: "w1", UserID: "wa-" + strconv.Itoa(i)},
			ClickID: "clid-" + strconv.Itoa(i), AdID: "1", Time: time.Now()}
	}
	if err := e.store.Record(context.Background(), touches); err != nil {
		b.Fatal(err)
	}
	publishN(b, e.js, b.N)
	b.ResetTimer()
	start := time.Now()
	e.restart()
	e.settled(10 * time.Minute)
	elapsed := time.Since(start)
	b.StopTimer()
	got := len(e.fake.Events())
	if null != nil {
		got = null.count()
	}
	if got != b.N {
		for _, o := range []string{"sent", "duplicate", "retried", "in_doubt", "invalid", "expired", "unattributed", "rejected"} {
			b.Logf("outcome %s: %v", o, e.metric("sender_conversions_total", map[string]string{"outcome": o}))
		}
		b.Fatalf("%d events sent; want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "conversions/s")
}

// BenchmarkRawFetchAck is the floor the sender is compared with: the same
// JetStream, the same fetch size and number of loops, and an ack per message
// without any work.
func BenchmarkRawFetchAck(b *testing.B) {
	e := newEnv(b, func(c *sender.Config) { c.BatchSize = 1000 })
	e.stop()
	ctx := context.Background()
	cons, err := e.js.CreateConsumer(ctx, sender.StreamConversions, jetstream.ConsumerConfig{
		Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 100000, FilterSubject: sender.SubjectConversions,
	})
	if err != nil {
		b.Fatal(err)
	}
	publishN(b, e.js, b.N)
	nc, err := nats.Connect(e.nats.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	cons, err = js.Consumer(ctx, sender.StreamConversions, "raw")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	var (
		mu   sync.Mutex
		seen int
		wg   sync.WaitGroup
	)
	for range e.cfg.Workers {
		wg.Go(func() {
			for {
				mu.Lock()
				done := seen >= b.N
				mu.Unlock()
				if done {
					return
				}
				mb, err := cons.Fetch(e.cfg.BatchSize, jetstream.FetchMaxWait(100*time.Millisecond))
				if err != nil {
					continue
				}
				n := 0
				for m := range mb.Messages() {
					_ = m.Ack()
					n++
				}
				mu.Lock()
				seen += n
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	e.waitFor(time.Minute, "raw acks", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "conversions/s")
}
