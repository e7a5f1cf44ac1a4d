package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/sender"
)

// SenderBench measures a running sender end to end (publish → join → fake
// Graph → ack) against RawFetchAck over the same number of messages on the
// same server, in alternating order, and its latency at a fixed rate.
type SenderBench struct {
	JS     jetstream.JetStream
	Gen    *ConvGen
	RunID  string // makes event ids unique across runs (the sender remembers sent ones)
	N      int    // conversions per max-rate round
	Rounds int
	Batch  int // the raw loop's fetch size: the sender's BATCH_SIZE
	// Rate and RateFor set the fixed-rate run (skipped when Rate is 0).
	Rate    float64
	RateFor time.Duration
	// Hold, when set, makes max-rate rounds publish while the sender's
	// consumer is paused (JetStream consumer pause) and time the drain from
	// its resumption, as the raw loop drains a full stream. Otherwise the
	// round is timed from the first publish while the sender runs.
	//
	// Pausing on the server rather than stopping the process (SIGSTOP)
	// matters: a stopped client lets its pull requests expire while the
	// server is already delivering to them, and the messages so delivered
	// wait out AckWait (30 s) before anyone sees them again.
	Hold bool
	// Attach routes the fake Graph's accepted event ids to t (nil detaches).
	Attach  func(t *Tracker)
	Timeout time.Duration // bound on waiting for one round
	Out     io.Writer
	// Procs are the processes whose CPU time per conversion each max-rate
	// round reports, from the end of publishing to the last ack (the
	// harness itself is always included: it runs the raw loop and the
	// Graph).
	Procs []Proc
	// Redis, when set, is the sender's Redis: each sender round reports the
	// commands it served per conversion.
	Redis redis.UniversalClient
	// NoRaw skips the raw fetch+ack rounds (the many-businesses runs compare
	// sender with sender).
	NoRaw bool
	// Hung reports conversions of businesses whose requests hang: they are
	// not waited for, and rounds are timed to the Graph only (their messages
	// stay unacked).
	Hung func(i int) bool
	// GraphStats, when set, describes the Graph's side of a round (requests,
	// events per request, peak requests in flight) and starts afresh.
	GraphStats func() string
}

// SenderResult is one max-rate round of the sender.
type SenderResult struct {
	N         int
	ToGraph   time.Duration // until the fake Graph had every event
	ToAcked   time.Duration // until the stream had every ack
	Dups      int
	Missing   int
	Published time.Duration
}

// Run executes the benchmark and prints per-round and RESULT lines.
func (b *SenderBench) Run(ctx context.Context) error {
	cons, err := b.waitForSender(ctx)
	if err != nil {
		return err
	}
	if err := b.warmUp(ctx); err != nil {
		return err
	}
	var rawRates, senderRates, ratios []float64
	var othersMax float64
	for round := range b.Rounds {
		order := []string{"raw", "sender"}
		if round%2 == 1 {
			order = []string{"sender", "raw"}
		}
		if b.NoRaw {
			order = []string{"sender"}
		}
		got := map[string]float64{}
		for _, name := range order {
			prefix := fmt.Sprintf("lg-%s-%s%d-", b.RunID, name, round+1)
			msgs := b.messages(prefix, b.N)
			procs := b.procs()
			var before CPUSample
			var cmds map[string]int64
			var start time.Time
			var mach MachineSample
			if name == "raw" {
				d, err := RawFetchAck(ctx, b.JS, RawMessages(msgs), b.Batch, func() { before, start, mach = SampleCPU(procs), time.Now(), SampleMachine() })
				if err != nil {
					return err
				}
				got[name] = float64(b.N) / d.Seconds()
				fmt.Fprintf(b.Out, "raw round %d      n %d  fetch+ack %9.0f msg/s  (%s)\n", round+1, b.N, got[name], d.Round(time.Millisecond))
			} else {
				r, err := b.maxRound(ctx, cons, prefix, msgs, func() {
					before, start, mach = SampleCPU(procs), time.Now(), SampleMachine()
					if b.Redis != nil {
						cmds, _ = CommandStats(ctx, b.Redis)
					}
				})
				if err != nil {
					return err
				}
				got[name] = float64(r.N) / r.ToAcked.Seconds()
				fmt.Fprintf(b.Out, "sender round %d   n %d  end-to-end %9.0f conv/s  (graph %s, acked %s, publish %s)  dups %d missing %d\n",
					round+1, r.N, got[name], r.ToGraph.Round(time.Millisecond), r.ToAcked.Round(time.Millisecond),
					r.Published.Round(time.Millisecond), r.Dups, r.Missing)
				if b.GraphStats != nil {
					fmt.Fprintf(b.Out, "  graph: %s\n", b.GraphStats())
				}
			}
			after := SampleCPU(procs)
			cpu := PerRequest(before, after, uint64(b.N))
			busy := Busy(before, after, time.Since(start))
			others := Others(mach, SampleMachine(), busy)
			othersMax = max(othersMax, others)
			fmt.Fprint(b.Out, "  cpu/conversion:")
			for i, p := range procs {
				if cpu[i] >= 0 {
					fmt.Fprintf(b.Out, " %s %.1fµs", p.Name, us(cpu[i]))
				}
			}
			fmt.Fprintf(b.Out, "  (busy %.0f%% of %d CPUs; others %.0f%%)\n", 100*busy, runtime.NumCPU(), 100*others)
			if cmds != nil {
				if after, err := CommandStats(ctx, b.Redis); err == nil {
					fmt.Fprintf(b.Out, "  redis commands/conversion: %s\n", CommandsPer(cmds, after, b.N))
				}
			}
		}
		rawRates = append(rawRates, got["raw"])
		senderRates = append(senderRates, got["sender"])
		ratios = append(ratios, safeDiv(got["sender"], got["raw"]))
	}
	if b.Rounds > 0 && b.NoRaw {
		fmt.Fprintf(b.Out, "RESULT sender_only n=%d sender_rps=%.0f rates=%s\n", b.N, Median(senderRates), formatFloats(senderRates))
	} else if b.Rounds > 0 {
		fmt.Fprintf(b.Out, "RESULT sender n=%d raw_rps=%.0f sender_rps=%.0f ratio=%.3f ratios=%s others_cpu_max=%.0f%% target>=0.6\n",
			b.N, Median(rawRates), Median(senderRates), Median(ratios), formatFloats(ratios), 100*othersMax)
	}
	if b.Rate > 0 {
		return b.rateRun(ctx)
	}
	return nil
}

func (b *SenderBench) procs() []Proc {
	return append([]Proc{{Name: "loadgen", PID: os.Getpid()}}, b.Procs...)
}

// waitForSender waits until the sender has created CONVERSIONS and its
// consumer.
func (b *SenderBench) waitForSender(ctx context.Context) (jetstream.Consumer, error) {
	deadline := time.Now().Add(b.Timeout)
	for {
		cons, err := b.JS.Consumer(ctx, sender.StreamConversions, sender.ConsumerName)
		if err == nil {
			return cons, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("sender consumer: %w", err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("sender did not create %s/%s within %s", sender.StreamConversions, sender.ConsumerName, b.Timeout)
		}
		sleep(ctx, 50*time.Millisecond)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// warmUp sends a few conversions through, so that connections, scripts and
// dataset lookups are warm before anything is timed.
func (b *SenderBench) warmUp(ctx context.Context) error {
	const n = 200
	prefix := fmt.Sprintf("lg-%s-warm-", b.RunID)
	t := b.tracker(prefix, n)
	b.Attach(t)
	defer b.Attach(nil)
	if err := PublishAll(ctx, b.JS, b.messages(prefix, n)); err != nil {
		return err
	}
	err := b.wait(ctx, t, "warm-up")
	if b.GraphStats != nil {
		b.GraphStats() // start the rounds' counts afresh
	}
	return err
}

func (b *SenderBench) wait(ctx context.Context, t *Tracker, what string) error {
	timer := time.NewTimer(b.Timeout)
	defer timer.Stop()
	select {
	case <-t.Done():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		s := t.Stats()
		return fmt.Errorf("%s: %d of %d conversions reached the fake Graph within %s (is the sender running, and are its contexts seeded?)",
			what, s.Received, s.Received+s.Missing, b.Timeout)
	}
}

func (b *SenderBench) messages(prefix string, n int) []*nats.Msg {
	now := time.Now()
	msgs := make([]*nats.Msg, n)
	for i := range msgs {
		msgs[i] = b.Gen.Message("conversions", prefix, i, now)
	}
	return msgs
}

// maxRound publishes msgs while the sender is held, releases it, and times
// the drain.
func (b *SenderBench) maxRound(ctx context.Context, cons jetstream.Consumer, prefix string, msgs []*nats.Msg, published func()) (SenderResult, error) {
	t := b.tracker(prefix, len(msgs))
	b.Attach(t)
	defer b.Attach(nil)
	if b.Hold {
		if _, err := b.JS.PauseConsumer(ctx, sender.StreamConversions, sender.ConsumerName, time.Now().Add(time.Hour)); err != nil {
			return SenderResult{}, fmt.Errorf("pause consumer: %w", err)
		}
	}
	pubStart := time.Now()
	err := PublishAll(ctx, b.JS, msgs)
	pubTime := time.Since(pubStart)
	if published != nil {
		published()
	}
	start := time.Now()
	if b.Hold {
		// Resumed even after a failed publish: the sender must not stay paused.
		if _, rerr := b.JS.ResumeConsumer(context.WithoutCancel(ctx), sender.StreamConversions, sender.ConsumerName); rerr != nil && err == nil {
			err = fmt.Errorf("resume consumer: %w", rerr)
		}
	} else {
		start = pubStart
	}
	if err != nil {
		return SenderResult{}, err
	}
	if err := b.wait(ctx, t, "sender round"); err != nil {
		return SenderResult{}, err
	}
	toGraph := time.Since(start)
	toAcked := toGraph
	if b.Hung == nil { // hung businesses' messages stay unacked
		if err := WaitDrained(ctx, cons, b.Timeout); err != nil {
			return SenderResult{}, err
		}
		toAcked = time.Since(start)
	}
	s := t.Stats()
	return SenderResult{N: len(msgs), ToGraph: toGraph, ToAcked: toAcked, Dups: s.Dups,
		Missing: s.Missing, Published: pubTime}, nil
}

// tracker tracks n conversions of prefix, not waiting for hung ones.
func (b *SenderBench) tracker(prefix string, n int) *Tracker {
	t := NewTracker(prefix, n)
	if b.Hung != nil {
		for i := range n {
			if b.Hung(i) {
				t.Skip(i)
			}
		}
	}
	return t
}

// rateRun publishes open loop at b.Rate for b.RateFor and reports publish →
// CAPI POST latency from each conversion's due time.
func (b *SenderBench) rateRun(ctx context.Context) error {
	n := int(Schedule{Rate: b.Rate}.Count(b.RateFor))
	prefix := fmt.Sprintf("lg-%s-rate-", b.RunID)
	msgs := b.messages(prefix, n)
	t := b.tracker(prefix, n)
	b.Attach(t)
	defer b.Attach(nil)
	s := Schedule{Start: time.Now().Add(50 * time.Millisecond), Rate: b.Rate}
	var lag Histogram // how late the publisher itself was
	for i, m := range msgs {
		due := s.Due(uint64(i))
		if d := time.Until(due); d > 0 {
			sleep(ctx, d)
		}
		lag.Record(time.Since(due))
		t.SetDue(i, due)
		if _, err := b.JS.PublishMsgAsync(m, jetstream.WithStallWait(30*time.Second)); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	waitErr := b.wait(ctx, t, "fixed-rate run")
	st := t.Stats()
	if b.GraphStats != nil {
		fmt.Fprintf(b.Out, "  graph: %s\n", b.GraphStats())
	}
	fmt.Fprintf(b.Out, "RESULT sender_latency rate=%.0f n=%d received=%d dups=%d p50=%s p90=%s p99=%s max=%s publish_lag_p99=%s target_p99<=250ms\n",
		b.Rate, n, st.Received, st.Dups, ms(st.Latency.Quantile(.5)), ms(st.Latency.Quantile(.9)),
		ms(st.Latency.Quantile(.99)), ms(st.Latency.Max()), ms(lag.Quantile(.99)))
	return waitErr
}
