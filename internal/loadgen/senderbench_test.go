package loadgen

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

func TestRawFetchAckConsumesEverything(t *testing.T) {
	ns := natstest.RunJetStream(t)
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	mix, _ := ParseMix(DefaultMix)
	c := &ConvGen{Bodies: NewBodyGen(2), Mix: mix, Contexts: 100}
	const n = 2500
	for range 2 { // a second run starts from a fresh stream
		msgs := make([]*nats.Msg, n)
		for i := range msgs {
			msgs[i] = c.Message("conversions", "raw-", i, time.Now())
		}
		d, err := RawFetchAck(t.Context(), js, RawMessages(msgs), 1000, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d <= 0 {
			t.Errorf("RawFetchAck took %v", d)
		}
	}
	if _, err := js.Stream(t.Context(), RawStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("raw stream left behind: %v", err)
	}
}

// TestSenderBenchAgainstInProcessSender runs the whole benchmark against the
// real sender (in process), a real redis-server, JetStream and the fake
// Graph: every conversion must arrive exactly once, and the RESULT lines
// must be printed.
func TestSenderBenchAgainstInProcessSender(t *testing.T) {
	rs := redistest.Start(t)
	ns := natstest.RunJetStream(t)
	rdb, err := attribution.NewClient(rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	mix, _ := ParseMix(DefaultMix)
	gen := &ConvGen{Bodies: NewBodyGen(2), Mix: mix, Contexts: 300}
	store := attribution.NewStore(rdb, 0)
	if err := gen.Seed(t.Context(), store); err != nil {
		t.Fatal(err)
	}
	fake := fakegraph.New(t, fakegraph.Options{})

	cfg := sender.DefaultConfig()
	cfg.GraphBase, cfg.AccessToken = fake.URL(), fakegraph.DefaultToken
	cfg.BatchSize, cfg.MaxAckPending = 200, 1000
	sjs, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := sender.New(cfg, sender.Deps{Log: zap.NewNop(), JS: sjs, Store: store, Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := svc.Run(ctx); err != nil {
			t.Errorf("sender: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })

	js, err := jetstream.New(ns.Connect(t), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	b := &SenderBench{
		JS: js, Gen: gen, RunID: "test", N: 600, Rounds: 2, Batch: 200, Rate: 400, RateFor: 500 * time.Millisecond,
		Timeout: time.Minute, Out: &out, Hold: true,
		Attach: func(tr *Tracker) {
			if tr == nil {
				fake.OnAccept(nil)
				return
			}
			fake.OnAccept(func(evs []fakegraph.Event) {
				ids := make([]string, len(evs))
				for i := range evs {
					ids[i] = evs[i].EventID
				}
				tr.Accept(time.Now(), ids...)
			})
		},
	}
	if err := b.Run(t.Context()); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	for id, n := range fake.CountByEventID() {
		if n != 1 {
			t.Errorf("event %s reached the fake Graph %d times", id, n)
		}
	}
	// warm-up 200 + 2 rounds of 600 + 200 at 400/s for 0.5s
	if got, want := len(fake.CountByEventID()), 200+2*600+200; got != want {
		t.Errorf("fake Graph has %d distinct events; want %d", got, want)
	}
	for _, want := range []string{"RESULT sender n=600", "RESULT sender_latency rate=400 n=200 received=200 dups=0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
