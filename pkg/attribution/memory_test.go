package attribution

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var (
	memoryFlag = flag.Bool("memory", false, "TestMemoryPerContext: store -memory.n contexts and assert ≤ 300 bytes each")
	memoryN    = flag.Int("memory.n", 100_000, "contexts stored by TestMemoryPerContext with -memory")
)

// maxBytesPerContext is the memory budget of one WhatsApp context.
const maxBytesPerContext = 300

// realisticTouches returns n WhatsApp clicks shaped like production ones:
// unique wa_ids of 11 to 13 digits, 100-char ctwa_clids, 18-digit ad ids,
// fb.me source URLs, a few businesses and phone numbers.
func realisticTouches(n int, seed uint64) []Touch {
	r := rand.New(rand.NewPCG(seed, seed))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	str := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	prefixes := []string{"1", "91", "549"} // US, India, Argentina mobile
	touches := make([]Touch, n)
	for i := range touches {
		biz := 102290129340000 + i%10
		touches[i] = Touch{
			Key: Key{Channel: WhatsApp, BusinessID: strconv.Itoa(biz),
				UserID: prefixes[i%3] + fmt.Sprintf("%010d", i)},
			PhoneNumberID: strconv.Itoa(biz + 4250223581),
			ClickID:       "ARA" + str(97),
			AdID:          strconv.Itoa(120212345678000000 + r.IntN(1000)),
			SourceType:    "ad",
			SourceURL:     "https://fb.me/" + str(9),
			Time:          t0.Add(time.Duration(r.IntN(7*24*3600)) * time.Second),
		}
	}
	return touches
}

// TestMemoryPerContext measures Redis used_memory per stored WhatsApp context,
// for last-touch and first-touch businesses (each on its own redis-server).
// A normal run stores a few thousand and only reports; with -memory (or
// ATTRIBUTION_MEMORY=1) it stores -memory.n (100,000) and asserts the budget:
//
//	go test ./pkg/attribution -run TestMemoryPerContext -v -memory [-memory.n 1000000]
func TestMemoryPerContext(t *testing.T) {
	full := *memoryFlag || os.Getenv("ATTRIBUTION_MEMORY") == "1"
	n := 5_000
	if full {
		n = *memoryN
	}
	for _, policy := range []string{"last_touch", "first_touch"} {
		t.Run(policy, func(t *testing.T) {
			touches := realisticTouches(n, 1)
			for i := range touches {
				touches[i].FirstTouch = policy == "first_touch"
			}
			perContext := measureMemory(t, touches)
			t.Logf("%d WhatsApp contexts, %s: %.1f bytes of used_memory each", n, policy, perContext)
			if full && perContext > maxBytesPerContext {
				t.Errorf("%.1f bytes per context; budget %d", perContext, maxBytesPerContext)
			}
		})
	}
}

// measureMemory records touches (each a new context) on a fresh
// redis-server and returns the growth of used_memory per context.
func measureMemory(t *testing.T, touches []Touch) float64 {
	t.Helper()
	n := len(touches)
	s, _ := newRealStore(t, 0)
	ctx := t.Context()
	usedMemory := func() int64 {
		t.Helper()
		info, err := s.rdb.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(strings.NewReader(info))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "used_memory:"); ok {
				m, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
		}
		t.Fatal("INFO memory has no used_memory")
		return 0
	}
	record(t, s, touches[0]) // load the script and create the aliases first
	before := usedMemory()
	for len(touches) > 0 {
		batch := touches[:min(1000, len(touches))]
		record(t, s, batch...)
		touches = touches[len(batch):]
	}
	if got := s.rdb.DBSize(ctx).Val(); got != int64(n+10) {
		t.Fatalf("DBSIZE = %d; want %d contexts + 10 aliases", got, n)
	}
	return float64(usedMemory()-before) / float64(n-1)
}

func BenchmarkRecord(b *testing.B) {
	s, _ := newRealStore(b, 0)
	touches := realisticTouches(10_000, 2)
	if err := s.Record(b.Context(), touches[:1]); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tc := touches[next.Add(1)%int64(len(touches))]
			if err := s.Record(b.Context(), []Touch{tc}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkLookup500(b *testing.B) {
	s, _ := newRealStore(b, 0)
	touches := realisticTouches(500, 3)
	if err := s.Record(b.Context(), touches); err != nil {
		b.Fatal(err)
	}
	keys := make([]Key, len(touches))
	for i, tc := range touches {
		keys[i] = tc.Key
	}
	for b.Loop() {
		cs, err := s.Lookup(b.Context(), keys)
		if err != nil || cs[499] == nil {
			b.Fatalf("Lookup = %v, %v", cs[499], err)
		}
	}
}

// BenchmarkRecordWrite is ingest's coalesced write at its maximum: batches of
// 7 touches, each a new conversation, with the Redis CPU each touch costs
// (from INFO commandstats: the script calls' time inside Redis) reported as
// redis_µs/touch, the number that bounds ingest's throughput on a shared host.
func BenchmarkRecordWrite(b *testing.B) {
	s, _ := newRealStore(b, 0)
	ctx := b.Context()
	touches := realisticTouches(7*b.N+7, 5)
	if err := s.Record(ctx, touches[:7]); err != nil { // loads the script
		b.Fatal(err)
	}
	if err := s.rdb.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	n := 0
	b.ResetTimer()
	for i := range b.N { // b.N, not b.Loop: the touches are made beforehand
		batch := touches[7+7*i : 14+7*i]
		if err := s.Record(ctx, batch); err != nil {
			b.Fatal(err)
		}
		n += len(batch)
	}
	info := s.rdb.Info(ctx, "commandstats").Val()
	var usec float64
	for _, line := range strings.Split(info, "\n") {
		if strings.HasPrefix(line, "cmdstat_evalsha:") || strings.HasPrefix(line, "cmdstat_eval:") {
			for _, f := range strings.Split(strings.TrimSpace(strings.SplitN(line, ":", 2)[1]), ",") {
				if v, ok := strings.CutPrefix(f, "usec="); ok {
					x, _ := strconv.ParseFloat(v, 64)
					usec += x
				}
			}
		}
	}
	b.ReportMetric(usec/float64(n), "redis_µs/touch")
}
