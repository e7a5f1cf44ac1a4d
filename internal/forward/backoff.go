package forward

import (
	"math/rand/v2"
	"time"
)

// backoff is the retry schedule: exponential with full jitter (AWS
// Architecture Blog, "Exponential Backoff And Jitter"). The n-th failed
// attempt waits a uniformly random time in (0, min(Max, Min·2^(n-1))], so
// that a destination coming back after an outage is not hit by its whole
// backlog at once. FORWARD_MAX_AGE, not a count, ends the retries.
type backoff struct {
	Min, Max time.Duration
	// Rand returns a uniform value in [0, n); defaults to math/rand/v2.
	Rand func(n int64) int64
}

// ceiling is the longest wait after the n-th failed attempt (n ≥ 1).
func (b backoff) ceiling(n int) time.Duration {
	d := b.Min
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// delay is the wait after the n-th failed attempt: at least a millisecond,
// at most ceiling(n).
func (b backoff) delay(n int) time.Duration {
	c := b.ceiling(n)
	r := b.Rand
	if r == nil {
		r = rand.Int64N
	}
	if c <= time.Millisecond {
		return time.Millisecond
	}
	return time.Millisecond + time.Duration(r(int64(c-time.Millisecond)+1))
}
