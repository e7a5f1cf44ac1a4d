package loadgen

import (
	"math"
	"time"
)

// Schedule is an open-loop send plan: request i is due at Start + i/Rate,
// whether or not earlier requests have been answered. Measuring latency from
// the due time rather than from the moment a busy generator got round to
// sending counts the wait a slow server causes ("coordinated omission", as
// wrk2 and HdrHistogram describe it).
type Schedule struct {
	Start time.Time
	Rate  float64 // requests per second, > 0
}

// Due returns when request i is due.
func (s Schedule) Due(i uint64) time.Time {
	return s.Start.Add(s.Offset(i))
}

// Offset returns how long after Start request i is due, computed from i so
// that rounding never accumulates over a long run.
func (s Schedule) Offset(i uint64) time.Duration {
	return time.Duration(math.Round(float64(i) * float64(time.Second) / s.Rate))
}

// Count returns how many requests fall due in [Start, Start+d): the first
// index whose due time is at or past d.
func (s Schedule) Count(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	n := uint64(math.Ceil(d.Seconds() * s.Rate))
	// Float rounding can put the boundary one off either way; settle it on
	// Offset, the definition the senders use.
	for n > 0 && s.Offset(n-1) >= d {
		n--
	}
	for s.Offset(n) < d {
		n++
	}
	return n
}
