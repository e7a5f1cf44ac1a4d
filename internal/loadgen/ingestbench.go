package loadgen

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
)

// IngestBench measures ingest against the bare echo baseline with the same
// generator in the same run, in alternating order, and reports the ratio.
type IngestBench struct {
	Ingest   Endpoint
	Bare     Endpoint // zero: no baseline (fixed-rate runs only)
	Secret   []byte   // META_APP_SECRET of the ingest under test
	Conns    int
	Warmup   time.Duration
	Duration time.Duration
	Rounds   int     // closed-loop rounds of each target
	Rate     float64 // > 0: also an open-loop run of ingest at this rate
	HalfRate bool    // also an open-loop run at half the measured ingest maximum
	PoolSize int     // bodies per run; more are sent as duplicates
	Mix      Mix
	Gen      *BodyGen
	Timeout  time.Duration
	// Wrk, when set, is the wrk binary: the closed-loop rounds are repeated
	// with wrk, which costs less CPU than any Go generator.
	Wrk        string
	WrkThreads int
	TempDir    string // for wrk's bodies file
	Out        io.Writer
	// Procs are the processes whose CPU time per request each run reports
	// (the generator itself is always included).
	Procs []Proc
	// Redis, when set, is the ingest's Redis: each run reports the commands
	// it served per request.
	Redis redis.UniversalClient
	// Metrics, when set, is ingest's /metrics URL: each run reports how many
	// webhooks shared one Redis write (ingest_store_batch_requests).
	Metrics string

	seq      uint64
	barePool *Pool // the baseline ignores bodies: one pool serves every run
}

// nextPool signs a fresh pool, so ids stay unique across runs.
func (b *IngestBench) nextPool() *Pool {
	p := NewPool(b.Gen, b.Mix, b.Secret, b.seq, b.PoolSize, time.Now())
	b.seq += uint64(b.PoolSize)
	return p
}

// poolFor returns the bodies for a run against e: fresh ones for ingest, so
// every stored click is new; the same ones each time for the baseline.
func (b *IngestBench) poolFor(e Endpoint) *Pool {
	if e != b.Bare {
		return b.nextPool()
	}
	if b.barePool == nil {
		b.barePool = b.nextPool()
	}
	b.barePool.Rewind()
	return b.barePool
}

// measure runs one Load against e.
func (b *IngestBench) measure(ctx context.Context, name string, e Endpoint, rate float64) *Result {
	p := b.poolFor(e)
	reqs := make([][]byte, p.Len())
	for i := range reqs {
		reqs[i] = BuildRequest(e, p.Item(i))
	}
	l := &Load{Name: name, Endpoint: e, Pool: p, Conns: b.Conns, Warmup: b.Warmup, Duration: b.Duration,
		Rate: rate, Timeout: b.Timeout}
	procs := b.procs()
	before, cmds, start, mach := SampleCPU(procs), b.commandStats(ctx), time.Now(), SampleMachine()
	scrape := b.scrape(ctx, e)
	r := l.Run(ctx, reqs)
	after := SampleCPU(procs)
	r.CPU = PerRequest(before, after, r.Total)
	r.Busy = Busy(before, after, time.Since(start))
	r.Others = Others(mach, SampleMachine(), r.Busy)
	r.Procs = procs
	PrintResult(b.Out, r)
	b.printCommands(ctx, cmds, int(r.Total))
	if scrape != nil {
		if per := storeBatching(scrape, b.scrape(ctx, e)); per > 0 {
			fmt.Fprintf(b.Out, "  webhooks per Redis write: %.1f\n", per)
		}
	}
	if used := p.Used(); used > uint64(p.Len()) && e != b.Bare {
		fmt.Fprintf(b.Out, "  note: %d of %d requests reused a body (pool %d); raise -pool for unique ids\n",
			used-uint64(p.Len()), used, p.Len())
	}
	return r
}

// scrape reads ingest's store batching metrics; nil without b.Metrics or
// when e is not ingest.
func (b *IngestBench) scrape(ctx context.Context, e Endpoint) map[string]float64 {
	if b.Metrics == "" || e != b.Ingest {
		return nil
	}
	m, err := ScrapeSums(ctx, b.Metrics, batchSum, batchCount)
	if err != nil {
		fmt.Fprintf(b.Out, "  metrics: %v\n", err)
		return nil
	}
	return m
}

// commandStats returns Redis's command counts, nil without b.Redis.
func (b *IngestBench) commandStats(ctx context.Context) map[string]int64 {
	if b.Redis == nil {
		return nil
	}
	m, err := CommandStats(ctx, b.Redis)
	if err != nil {
		fmt.Fprintf(b.Out, "  redis: %v\n", err)
		return nil
	}
	return m
}

// printCommands prints the Redis commands served per request since before.
func (b *IngestBench) printCommands(ctx context.Context, before map[string]int64, n int) {
	if before == nil {
		return
	}
	if after := b.commandStats(ctx); after != nil {
		fmt.Fprintf(b.Out, "  redis commands/request: %s\n", CommandsPer(before, after, n))
	}
}

func (b *IngestBench) procs() []Proc {
	return append([]Proc{{Name: "loadgen", PID: os.Getpid()}}, b.Procs...)
}

func maxOthers(runs []*Result) float64 {
	m := 0.0
	for _, r := range runs {
		m = max(m, r.Others)
	}
	return m
}

// cpuMedians prints the median CPU time per request of each process over
// the runs against one target.
func cpuMedians(runs []*Result) string {
	if len(runs) == 0 {
		return ""
	}
	s := ""
	for i, p := range runs[0].Procs {
		var us []float64
		for _, r := range runs {
			if r.CPU[i] >= 0 {
				us = append(us, float64(r.CPU[i])/float64(time.Microsecond))
			}
		}
		if len(us) > 0 {
			s += fmt.Sprintf(" %s_us=%.1f", p.Name, Median(us))
		}
	}
	return s
}

// Run executes the benchmark and prints per-run lines and RESULT lines.
func (b *IngestBench) Run(ctx context.Context) error {
	var ingestRPS []float64
	if b.Rounds > 0 && b.Bare.Addr == "" {
		// No baseline: closed-loop rounds of ingest alone (for profiles).
		var runs []*Result
		for round := range b.Rounds {
			r := b.measure(ctx, fmt.Sprintf("ingest round %d", round+1), b.Ingest, 0)
			runs = append(runs, r)
			ingestRPS = append(ingestRPS, r.Throughput())
		}
		fmt.Fprintf(b.Out, "RESULT ingest_alone generator=go conns=%d ingest_rps=%.0f\n", b.Conns, Median(ingestRPS))
		fmt.Fprintf(b.Out, "RESULT cpu_per_request target=ingest%s\n", cpuMedians(runs))
	}
	if b.Bare.Addr != "" && b.Rounds > 0 {
		runs := map[string][]*Result{}
		bareRPS, goIngestRPS, ratios, err := b.alternate(func(name string, round int, e Endpoint) (float64, error) {
			r := b.measure(ctx, fmt.Sprintf("%s round %d", name, round+1), e, 0)
			runs[name] = append(runs[name], r)
			return r.Throughput(), ctx.Err()
		})
		if err != nil {
			return err
		}
		ingestRPS = append(ingestRPS, goIngestRPS...)
		fmt.Fprintf(b.Out, "RESULT ingest generator=go conns=%d bare_rps=%.0f ingest_rps=%.0f ratio=%.3f ratios=%s target>=0.55\n",
			b.Conns, Median(bareRPS), Median(ingestRPS), Median(ratios), formatFloats(ratios))
		fmt.Fprintf(b.Out, "RESULT others_cpu_max=%.0f%% (CPU used by other tenants during the rounds; well above 0: rerun)\n",
			100*maxOthers(append(runs["bare"], runs["ingest"]...)))
		fmt.Fprintf(b.Out, "RESULT cpu_per_request target=bare%s\n", cpuMedians(runs["bare"]))
		fmt.Fprintf(b.Out, "RESULT cpu_per_request target=ingest%s\n", cpuMedians(runs["ingest"]))
		if b.Wrk != "" {
			if err := b.runWrk(ctx); err != nil {
				return err
			}
		}
	}
	if b.HalfRate && len(ingestRPS) > 0 {
		half := Median(ingestRPS) / 2
		r := b.measure(ctx, "ingest at half max", b.Ingest, half)
		fmt.Fprintf(b.Out, "RESULT ingest_latency rate=%.0f achieved=%.0f p50=%s p90=%s p99=%s max=%s missed=%d errors=%d others_cpu=%.0f%% target_p99<=10ms\n",
			half, r.Throughput(), ms(r.Latency.Quantile(.5)), ms(r.Latency.Quantile(.9)), ms(r.Latency.Quantile(.99)),
			ms(r.Latency.Max()), r.Missed, r.Errors, 100*r.Others)
	}
	if b.Rate > 0 {
		r := b.measure(ctx, fmt.Sprintf("ingest at %.0f/s", b.Rate), b.Ingest, b.Rate)
		fmt.Fprintf(b.Out, "RESULT ingest_latency rate=%.0f achieved=%.0f p50=%s p90=%s p99=%s max=%s missed=%d errors=%d others_cpu=%.0f%%\n",
			b.Rate, r.Throughput(), ms(r.Latency.Quantile(.5)), ms(r.Latency.Quantile(.9)), ms(r.Latency.Quantile(.99)),
			ms(r.Latency.Max()), r.Missed, r.Errors, 100*r.Others)
	}
	return nil
}

// alternate runs b.Rounds rounds of measure against the bare baseline and
// ingest, alternating which goes first so that drift in the machine's load
// (other tenants, thermal) does not favour one target, and returns the
// throughputs and the per-round ratios ingest/bare.
func (b *IngestBench) alternate(measure func(name string, round int, e Endpoint) (float64, error)) (bareRPS, ingestRPS, ratios []float64, err error) {
	for round := range b.Rounds {
		order := []string{"bare", "ingest"}
		if round%2 == 1 {
			order = []string{"ingest", "bare"}
		}
		got := map[string]float64{}
		for _, name := range order {
			e := b.Ingest
			if name == "bare" {
				e = b.Bare
			}
			if got[name], err = measure(name, round, e); err != nil {
				return nil, nil, nil, err
			}
		}
		bareRPS = append(bareRPS, got["bare"])
		ingestRPS = append(ingestRPS, got["ingest"])
		ratios = append(ratios, safeDiv(got["ingest"], got["bare"]))
	}
	return bareRPS, ingestRPS, ratios, nil
}
