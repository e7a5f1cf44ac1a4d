package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/loadgen"
)

// runStore measures the all-in-one's embedded store against redis-server
// in one run (issue 16) and prints the ratios against their targets.
func runStore(ctx context.Context, args []string, _ func(string) string, stdout io.Writer) error {
	fs := newFlags("store")
	b := loadgen.StoreBench{Log: os.Stderr}
	fs.StringVar(&b.Bin, "all-in-one-bin", "./bin/all-in-one", "the all-in-one binary (go build -o bin/all-in-one ./cmd/all-in-one)")
	fs.StringVar(&b.RedisBin, "redis-server", "redis-server", "redis-server binary")
	fs.StringVar(&b.Dir, "dir", "", "scratch directory for the data dirs (default: a new temporary one)")
	fs.IntVar(&b.Contexts, "n", 1000000, "contexts stored before the measured window")
	fs.IntVar(&b.Batch, "batch", 200, "clicks per webhook delivery")
	fs.IntVar(&b.Workers, "workers", 8, "deliveries in flight")
	fs.DurationVar(&b.Duration, "d", 20*time.Second, "measured window")
	fs.IntVar(&b.Expiring, "expiring", 200000, "keys with a 3s TTL written just before the latency window, to expire in it")
	fs.BoolVar(&b.NoCompact, "no-compact", false, "do not start a compaction (BGREWRITEAOF) before the latency window")
	fs.Float64Var(&b.Rate, "rate", 1000, "single-click webhooks a second in the latency window")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if b.Contexts < 0 || b.Batch < 1 || b.Workers < 1 || b.Duration <= 0 || b.Rate <= 0 {
		return errors.New("store: -n must be ≥ 0, -batch and -workers ≥ 1, -d and -rate > 0")
	}
	if b.Dir == "" {
		dir, err := os.MkdirTemp("", "loadgen-store-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		b.Dir = dir
	}
	emb, real, err := b.Run(ctx)
	if err != nil {
		return err
	}
	printStore(stdout, &b, emb, real)
	return nil
}

func printStore(w io.Writer, b *loadgen.StoreBench, emb, real *loadgen.StoreResult) {
	compaction := "a compaction runs"
	if b.NoCompact {
		compaction = "no compaction runs"
	}
	fmt.Fprintf(w, "store: %d contexts stored; ingest: %v of WhatsApp deliveries of %d clicks, %d at a time; latency: %.0f webhooks/s for %v while %d keys expire and %s\n",
		b.Contexts, b.Duration, b.Batch, b.Workers, b.Rate, b.Duration, b.Expiring, compaction)
	fmt.Fprintf(w, "%-13s %10s %12s %8s %9s %9s %9s %8s %10s %11s %9s\n", "store", "fill ctx/s", "ingest ctx/s", "non-200",
		"lat p50", "lat p99", "lat max", "non-200", "RSS MiB", "keys after", "restart")
	for _, r := range []*loadgen.StoreResult{emb, real} {
		restart := "-"
		if r.Restart > 0 {
			restart = fmt.Sprintf("%.1fs", r.Restart.Seconds())
		}
		rssText := fmt.Sprintf("%d", r.RSS>>20)
		if r.StoreRSS > 0 {
			rssText = fmt.Sprintf("%d+%d", r.RSS>>20, r.StoreRSS>>20)
		}
		fmt.Fprintf(w, "%-13s %10.0f %12.0f %8d %9s %9s %9s %8d %10s %11d %9s\n", r.Name, r.FillRate, r.Rate, failed(r.Load),
			msText(r.Latency.Latency.Quantile(0.5)), msText(r.Latency.Latency.Quantile(0.99)), msText(r.Latency.Latency.Max()),
			failed(r.Latency), rssText, r.KeysAfter, restart)
	}
	ratio := 0.0
	if real.Rate > 0 {
		ratio = emb.Rate / real.Rate
	}
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	p99 := emb.Latency.Latency.Quantile(0.99)
	fmt.Fprintf(w, "ingest ratio embedded/redis-server  %.2f   (target ≥ 0.5: %s)\n", ratio, check(ratio >= 0.5))
	fmt.Fprintf(w, "embedded p99 webhook answer         %s  (target ≤ 50ms: %s; redis-server %s)\n", msText(p99),
		check(p99 <= 50*time.Millisecond && failed(emb.Latency) == 0), msText(real.Latency.Latency.Quantile(0.99)))
	fmt.Fprintf(w, "embedded journal syncs in the latency window: %.0f, %.0f over 50ms, %.0f over 100ms\n", emb.Syncs, emb.Syncs50, emb.Syncs100)
	fmt.Fprintf(w, "embedded RSS after the fill         %d MiB (target ≤ 1.5 GB: %s)\n", emb.RSS>>20, check(emb.RSS <= 1500e6))
	fmt.Fprintf(w, "embedded SIGKILL → ready            %.1fs with %d keys reloaded (target ≤ 30s: %s)\n",
		emb.Restart.Seconds(), emb.KeysReload, check(emb.Restart <= 30*time.Second && emb.KeysReload > 0))
}

// failed counts answers other than 200, errors and missed sends.
func failed(r *loadgen.Result) uint64 {
	n := r.Errors + r.Missed
	for code, c := range r.Codes {
		if code != 200 {
			n += c
		}
	}
	return n
}

func msText(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}
