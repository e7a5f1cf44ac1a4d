package loadgen

import (
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	// Every value maps to a bucket whose top is at or above it, and the next
	// bucket starts right after the top: no gaps, no overlaps.
	for i := range nBuckets - 1 {
		hi := bucketHigh(i)
		if got := bucketOf(hi); got != i {
			t.Fatalf("bucketOf(bucketHigh(%d)=%d) = %d", i, hi, got)
		}
		if hi == 1<<64-1 {
			break
		}
		if got := bucketOf(hi + 1); got != i+1 {
			t.Fatalf("bucketOf(%d) = %d; want %d", hi+1, got, i+1)
		}
	}
	if got := bucketOf(1<<63 - 1); got >= nBuckets {
		t.Fatalf("bucketOf(max int64) = %d, past %d buckets", got, nBuckets)
	}
}

func TestQuantileSmallValuesExact(t *testing.T) {
	var h Histogram
	for v := 1; v <= 100; v++ {
		h.Record(time.Duration(v))
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.01, 1}, {0.5, 50}, {0.9, 90}, {0.99, 99}, {1, 100}}
	for _, tt := range tests {
		if got := h.Quantile(tt.q); got != tt.want {
			t.Errorf("Quantile(%v) = %d; want %d", tt.q, got, tt.want)
		}
	}
	if h.Count() != 100 || h.Max() != 100 || h.Mean() != 50 {
		t.Errorf("Count, Max, Mean = %d, %d, %d; want 100, 100, 50", h.Count(), h.Max(), h.Mean())
	}
}

func TestQuantileWithinPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]time.Duration, 100000)
	for i := range vals {
		// log-uniform from 1µs to 1s, like latencies
		vals[i] = time.Duration(float64(time.Microsecond) * math.Pow(10, r.Float64()*6))
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		// Never below the exact value, at most one bucket (1/64) above.
		if got < exact || float64(got) > float64(exact)*(1+1.0/64) {
			t.Errorf("Quantile(%v) = %v; exact %v (allowed up to +1/64)", q, got, exact)
		}
	}
	if h.Quantile(1) != vals[len(vals)-1] {
		t.Errorf("Quantile(1) = %v; want the exact max %v", h.Quantile(1), vals[len(vals)-1])
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	var a, b, all Histogram
	for i := range 1000 {
		d := time.Duration(i*i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{}) // merging an empty one changes nothing
	if m != all {
		t.Errorf("merged histogram differs from one that recorded everything")
	}
}

func TestEmptyAndNegative(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Mean() != 0 {
		t.Errorf("empty: Quantile, Mean = %v, %v; want 0, 0", h.Quantile(0.99), h.Mean())
	}
	h.Record(-time.Second)
	if h.Count() != 1 || h.Quantile(1) != 0 {
		t.Errorf("negative: Count, Quantile(1) = %d, %v; want 1, 0", h.Count(), h.Quantile(1))
	}
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and a parenthesis must not shift fields.
	line := "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 8 0 1000 1 1\n"
	got, err := parseStat(line)
	if err != nil || got != 2870*time.Millisecond {
		t.Errorf("parseStat = %v, %v; want 2.87s (287 ticks)", got, err)
	}
	if _, err := parseStat("4242 (x) S 1 2"); err == nil {
		t.Error("parseStat of a short line: no error")
	}
	if own, err := ProcCPU(os.Getpid()); err != nil || own < 0 {
		t.Errorf("ProcCPU(self) = %v, %v", own, err)
	}
}

func TestPerRequestAndParseProcs(t *testing.T) {
	got := PerRequest(CPUSample{time.Second, -1, 0}, CPUSample{3 * time.Second, time.Second, time.Second}, 1000)
	want := []time.Duration{2 * time.Millisecond, -1, time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("PerRequest = %v; want %v", got, want)
		}
	}
	ps, err := ParseProcs("ingest=12,redis=34")
	if err != nil || len(ps) != 2 || ps[1] != (Proc{Name: "redis", PID: 34}) {
		t.Errorf("ParseProcs = %v, %v", ps, err)
	}
	for _, bad := range []string{"ingest", "ingest=x", "=3", "a=0"} {
		if _, err := ParseProcs(bad); err == nil {
			t.Errorf("ParseProcs(%q): no error", bad)
		}
	}
}

func TestBusy(t *testing.T) {
	before := CPUSample{time.Second, -1}
	after := CPUSample{time.Second + time.Duration(runtime.NumCPU())*500*time.Millisecond, 5 * time.Second}
	if got := Busy(before, after, time.Second); got != 0.5 {
		t.Errorf("Busy = %v; want 0.5 (unknown processes left out)", got)
	}
}

func TestMachineCPU(t *testing.T) {
	a := parseProcStat("cpu  100 0 50 800 50 0 0 0 0 0")
	b := parseProcStat("cpu  200 0 150 800 50 0 0 0 0 0")
	if a.total != 1000 || a.busy != 150 {
		t.Fatalf("parseProcStat = %+v; want busy 150 of 1000", a)
	}
	// 200 ticks of 200 were busy (100%); the watched processes used 60%.
	if got := Others(a, b, 0.6); got < 0.39 || got > 0.41 {
		t.Errorf("Others = %v; want 0.4", got)
	}
	if got := Others(a, b, 1.2); got != 0 {
		t.Errorf("Others with watched above the machine = %v; want 0", got)
	}
	if parseProcStat("intr 1 2 3") != (MachineSample{}) || SampleMachine().total == 0 {
		t.Error("parseProcStat accepted a non-cpu line, or /proc/stat unreadable")
	}
}
