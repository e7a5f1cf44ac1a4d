package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/loadgen"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// runIngest drives a running ingest (and the bare baseline) with signed
// webhooks.
func runIngest(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("ingest")
	url := fs.String("url", "http://127.0.0.1:8080/webhook", "ingest webhook URL")
	bareURL := fs.String("bare-url", "", "bare baseline URL (loadgen bare); empty: ingest alone, no ratio")
	conns := fs.Int("c", 64, "connections")
	d := fs.Duration("d", 10*time.Second, "measured duration of each run")
	warmup := fs.Duration("warmup", time.Second, "warm-up before each run, not counted")
	rounds := fs.Int("rounds", 3, "closed-loop rounds of each target (medians are reported)")
	rate := fs.Float64("rate", 0, "also run ingest open loop at this many requests/s")
	half := fs.Bool("half", false, "also run ingest open loop at half its measured maximum")
	pool := fs.Int("pool", 200000, "pre-signed bodies per run; beyond that, bodies are reused (idempotent duplicates)")
	mix := fs.String("mix", loadgen.DefaultMix, "channel weights")
	businesses := fs.Int("businesses", 8, "business ids per channel")
	timeout := fs.Duration("timeout", 5*time.Second, "per-request timeout (and open-loop grace)")
	wrk := fs.String("wrk", "auto", `wrk binary for a second closed-loop comparison ("auto": use wrk from PATH if present; "": off)`)
	wrkThreads := fs.Int("wrk-threads", 1, "wrk threads")
	metrics := fs.String("metrics", "", "ingest's /metrics URL: report webhooks per Redis write (optional)")
	redisURL := fs.String("redis", "", "the ingest's Redis URL: report the commands it serves per request (optional)")
	procs := fs.String("procs", "", "processes to report CPU time per request for, name=pid,... (e.g. ingest=123,bare=456,redis=789)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secret := getenv("META_APP_SECRET")
	if secret == "" {
		return errors.New("META_APP_SECRET is required (the secret the ingest under test verifies with; env only)")
	}
	m, err := loadgen.ParseMix(*mix)
	if err != nil {
		return err
	}
	b := &loadgen.IngestBench{Secret: []byte(firstSecret(secret)), Conns: *conns, Warmup: *warmup, Duration: *d,
		Rounds: *rounds, Rate: *rate, HalfRate: *half, PoolSize: *pool, Mix: m, Gen: loadgen.NewBodyGen(*businesses),
		Timeout: *timeout, WrkThreads: *wrkThreads, Out: stdout, Metrics: *metrics}
	if b.Procs, err = loadgen.ParseProcs(*procs); err != nil {
		return err
	}
	if *redisURL != "" {
		rdb, err := attribution.NewClient(*redisURL)
		if err != nil {
			return err
		}
		defer rdb.Close()
		b.Redis = rdb
	}
	if b.Ingest, err = loadgen.ParseEndpoint(*url); err != nil {
		return err
	}
	if *bareURL != "" {
		if b.Bare, err = loadgen.ParseEndpoint(*bareURL); err != nil {
			return err
		}
	}
	switch *wrk {
	case "auto":
		b.Wrk, _ = exec.LookPath("wrk")
	default:
		b.Wrk = *wrk
	}
	fmt.Fprintf(stdout, "loadgen ingest: conns=%d warmup=%s duration=%s rounds=%d pool=%d mix=%s wrk=%q\n",
		*conns, *warmup, *d, *rounds, *pool, *mix, b.Wrk)
	return b.Run(ctx)
}

// firstSecret returns the first of META_APP_SECRET's comma-separated
// secrets: the one the generator signs with.
func firstSecret(s string) string {
	for i := range len(s) {
		if s[i] == ',' {
			return s[:i]
		}
	}
	return s
}

// runBare serves the bare echo baseline until interrupted.
func runBare(ctx context.Context, args []string, _ func(string) string, stdout io.Writer) error {
	fs := newFlags("bare")
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(stdout, "bare listening on %s\n", ln.Addr())
	return loadgen.ServeBare(ctx, ln)
}
