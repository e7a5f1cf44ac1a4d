package sender_test

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// BenchmarkTrailOnOff measures what the event trail costs: rounds of b.N
// conversions through the sender with a Graph API that takes everything
// (the sender's own cost, where the trail weighs most), TRAIL=true and
// TRAIL=false alternating in the same run, each on a fresh Redis and
// JetStream. It reports conversions/s of each (median of the rounds) and
// their ratio, on ÷ off (target ≥ 0.9; see docs/trail.md).
func BenchmarkTrailOnOff(b *testing.B) {
	const rounds = 5
	var on, off, onCPU, offCPU []float64
	for r := range rounds {
		for _, trailOn := range []bool{r%2 == 0, r%2 != 0} { // on first, then off first
			rate, cpu := trailRound(b, trailOn, b.N)
			if trailOn {
				on, onCPU = append(on, rate), append(onCPU, cpu)
			} else {
				off, offCPU = append(off, rate), append(offCPU, cpu)
			}
		}
	}
	b.ReportMetric(median(on), "on_conversions/s")
	b.ReportMetric(median(off), "off_conversions/s")
	b.ReportMetric(median(on)/median(off), "on/off")
	b.ReportMetric(median(onCPU), "on_redis_µs/conversion")
	b.ReportMetric(median(offCPU), "off_redis_µs/conversion")
	b.Logf("trail on %v, off %v conversions/s; redis-server CPU µs per conversion on %v, off %v", on, off, onCPU, offCPU)
}

// redisCPU returns the CPU time redis-server has used (INFO cpu: user and
// system, main thread and others).
func redisCPU(b *testing.B, rdb *redis.Client) time.Duration {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu %s: %v", k, err)
			}
			sum += f
		}
	}
	return time.Duration(sum * float64(time.Second))
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// trailRound sends n conversions with the trail on or off and returns
// conversions/s, from the sender's start to the last ack, and the
// redis-server CPU µs per conversion meanwhile.
func trailRound(b *testing.B, on bool, n int) (float64, float64) {
	b.StopTimer()
	defer b.StartTimer()
	null := &nullGraph{}
	e := newEnvDeps(b, func(c *sender.Config) {
		c.MaxAckPending = 100000
		c.BatchSize = 1000
		c.HTTPTimeout = 10 * time.Second
		c.SendLease = 30 * time.Second
		c.ShutdownTimeout = 15 * time.Second
		c.Trail = on
	}, func(d *sender.Deps) { d.Poster = null })
	e.stop()
	touches := make([]attribution.Touch, benchUsers)
	for i := range touches {
		touches[i] = attribution.Touch{Key: attribution.Key{Channel: "whatsapp", BusinessID: "w1", UserID: "wa-" + strconv.Itoa(i)},
			ClickID: "clid-" + strconv.Itoa(i), AdID: "1", Time: time.Now()}
	}
	if err := e.store.Record(context.Background(), touches); err != nil {
		b.Fatal(err)
	}
	publishN(b, e.js, n)
	b.StartTimer()
	cpu0, start := redisCPU(b, e.rdb), time.Now()
	e.restart()
	e.settled(10 * time.Minute)
	elapsed := time.Since(start)
	b.StopTimer()
	if got := null.count(); got != n {
		b.Fatalf("%d events sent; want %d", got, n)
	}
	if on {
		// The last writes wait for a round trip or trail.FlushAfter.
		e.waitFor(5*time.Second, "bench-0's trail", func() bool {
			_, err := trail.Read(context.Background(), e.rdb, "w1", "bench-0", e.cfg.SentTTL, time.Now())
			return err == nil
		})
	} else if _, err := trail.Read(context.Background(), e.rdb, "w1", "bench-0", e.cfg.SentTTL, time.Now()); err != trail.ErrNotFound {
		b.Fatal("trail off, but a trail was written")
	}
	cpu := redisCPU(b, e.rdb) - cpu0 // the trail's last flush included
	e.stop()
	return float64(n) / elapsed.Seconds(), float64(cpu.Microseconds()) / float64(n)
}
