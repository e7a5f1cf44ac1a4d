// Package loadgen is the load harness behind cmd/loadgen: signed webhook
// bodies, a cheap HTTP/1.1 load generator (closed loop or open loop at a fixed
// rate), a bare echo baseline, the sender and raw JetStream benchmarks, and the
// Redis memory probe. Every benchmark reports ratios to a baseline measured in
// the same run, because absolute numbers on a shared 2-core machine are noise.
package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: every power of two above
// 2^subBits is cut into 2^(subBits-1) equal buckets, so a recorded value is
// known to within 1/64 (1.6%). Values below 2^subBits ns are exact.
const subBits = 7

const (
	subCount = 1 << subBits // exact buckets below this value
	half     = subCount / 2 // buckets per power of two above it
	nBuckets = (64-subBits)*half + subCount
)

// Histogram records durations in log-linear buckets (the HdrHistogram idea,
// with fixed precision and no configuration). The zero value is ready to use.
// It is not safe for concurrent use: give each goroutine its own and Merge.
type Histogram struct {
	counts [nBuckets]uint64
	n      uint64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

// bucketOf returns the bucket index of v nanoseconds.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits
	return e*half + int(v>>e)
}

// bucketHigh returns the largest value that falls in bucket i.
func bucketHigh(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	e := i/half - 1
	m := uint64(i - e*half)
	return (m+1)<<e - 1
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count returns how many durations were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest duration recorded (exact).
func (h *Histogram) Max() time.Duration { return h.max }

// Mean returns the exact mean, 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the duration below or at which a fraction q (0..1) of the
// values fall, rounded up to the top of its bucket (so it never understates)
// and capped at the exact maximum. It returns 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketHigh(i)), h.max)
		}
	}
	return h.max
}
