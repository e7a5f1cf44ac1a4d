package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/loadgen"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// runRedisMem records N contexts into a Redis and prints used_memory growth
// per context. Point it at a fresh server: other keys would be counted.
func runRedisMem(ctx context.Context, args []string, _ func(string) string, stdout io.Writer) error {
	fs := newFlags("redis-mem")
	url := fs.String("redis", "redis://127.0.0.1:6379/0", "Redis URL of a fresh, otherwise idle server")
	n := fs.Int("n", 1000000, "contexts to record")
	mix := fs.String("mix", loadgen.DefaultMix, "channel weights (whatsapp=1 for the largest contexts)")
	businesses := fs.Int("businesses", 8, "business ids per channel")
	flush := fs.Bool("flush", false, "FLUSHALL before measuring")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := loadgen.ParseMix(*mix)
	if err != nil {
		return err
	}
	rdb, err := attribution.NewClient(*url)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if *flush {
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			return fmt.Errorf("flushall: %w", err)
		}
	}
	start := time.Now()
	res, err := loadgen.MeasureMemory(ctx, rdb, loadgen.NewBodyGen(*businesses), m, 0, *n)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "RESULT redis_mem mix=%s n=%d keys=%d used_before=%d used_after=%d bytes_per_context=%.1f target<=300 took=%s\n",
		*mix, res.N, res.Keys, res.Before, res.After, res.PerContext(), time.Since(start).Round(time.Millisecond))
	return nil
}
