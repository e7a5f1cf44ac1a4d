package sender

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/capi"
)

// businesses holds the per-business send state, so that one business's
// throttling or broken token never slows another down. A business whose
// state is back to the start (no failures, no wait, not paused) and that
// was not looked at for businessIdle is forgotten, so that tens of
// thousands of businesses do not keep an entry each for ever. Forgetting
// loses little: a backoff count long since waited out, or a pause over for
// businessIdle (whose business then counts as never paused here; the shared
// pause in Redis and the parked messages are unaffected).
type businesses struct {
	retryMin, retryMax, pauseInterval time.Duration

	mu        sync.Mutex
	m         map[string]*business
	lastSweep time.Time
}

// businessIdle is how long an idle business's state is kept.
const businessIdle = 10 * time.Minute

// business is one business's backoff and pause state.
type business struct {
	mu          sync.Mutex
	failures    int       // consecutive transient failures
	notBefore   time.Time // throttled: no request before this
	paused      bool      // token error: sends stop until pausedUntil, then one probe
	pausedUntil time.Time
	seen        time.Time // last get, for sweep (guarded by businesses.mu)
}

func newBusinesses(cfg Config) *businesses {
	return &businesses{retryMin: cfg.RetryMin, retryMax: cfg.RetryMax, pauseInterval: cfg.PauseInterval, m: map[string]*business{}}
}

func (bs *businesses) get(id string) *business {
	return bs.getAt(id, time.Now())
}

func (bs *businesses) getAt(id string, now time.Time) *business {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if now.Sub(bs.lastSweep) >= businessIdle/10 {
		bs.sweep(now)
	}
	b := bs.m[id]
	if b == nil {
		b = &business{}
		bs.m[id] = b
	}
	b.seen = now
	return b
}

// sweep forgets businesses idle for businessIdle that have nothing left to
// wait for; bs.mu is held.
func (bs *businesses) sweep(now time.Time) {
	bs.lastSweep = now
	for id, b := range bs.m {
		if now.Sub(b.seen) < businessIdle {
			continue
		}
		b.mu.Lock()
		idle := !now.Before(b.notBefore) && (!b.paused || now.Sub(b.pausedUntil) >= businessIdle)
		b.mu.Unlock()
		if idle {
			delete(bs.m, id)
		}
	}
}

// len is how many businesses have state.
func (bs *businesses) len() int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return len(bs.m)
}

// blocked returns how long the business's events must wait before a request
// may go out, and the outcome to count for them (paused or retried).
func (b *business) blocked(now time.Time) (time.Duration, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.paused && now.Before(b.pausedUntil) {
		return b.pausedUntil.Sub(now), outcomePaused
	}
	if now.Before(b.notBefore) {
		return b.notBefore.Sub(now), outcomeRetried
	}
	return 0, ""
}

// succeeded records an accepted request and Meta's usage headers: at 90% of
// a limit the business waits RETRY_MIN between requests, and when Meta says
// when access returns, it waits that long. It reports whether the business
// was paused until now.
func (bs *businesses) succeeded(b *business, u capi.Usage, now time.Time) (resumed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures = 0
	switch {
	case u.Throttled():
		b.notBefore = now.Add(max(u.RetryAfter, bs.retryMin))
	case u.MaxPercent >= 90:
		b.notBefore = now.Add(bs.retryMin)
	}
	resumed = b.paused
	b.paused = false
	return resumed
}

// failed records a transient (throttled false) or throttling error and
// returns how long the events should wait: exponential backoff with full
// jitter above RETRY_MIN, capped at RETRY_MAX, and at least what Meta's
// usage headers ask for. A throttled business's next batches wait too.
func (bs *businesses) failed(b *business, throttled bool, retryAfter time.Duration, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	d := bs.backoff(b.failures)
	if throttled {
		d = max(d, retryAfter)
		b.notBefore = now.Add(d)
	}
	return d
}

// backoff is the delay after n consecutive failures: uniform in
// [RETRY_MIN, min(RETRY_MAX, RETRY_MIN·2^(n-1))] ("full jitter" above a floor,
// so a retry storm spreads out and never comes back at once).
func (bs *businesses) backoff(n int) time.Duration {
	ceil := bs.retryMin
	for i := 1; i < n && ceil < bs.retryMax; i++ {
		ceil *= 2
	}
	ceil = min(ceil, bs.retryMax)
	return bs.retryMin + rand.N(ceil-bs.retryMin+1)
}

// pause stops the business's sends for PAUSE_INTERVAL after a token error;
// it reports whether the business was running until now (log and alert
// then, once per pause).
func (bs *businesses) pause(b *business, now time.Time) (first bool, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	first = !b.paused
	b.paused = true
	b.pausedUntil = now.Add(bs.pauseInterval)
	return first, bs.pauseInterval
}

// pausedIDs lists the businesses paused here whose pause has not run out.
func (bs *businesses) pausedIDs(now time.Time) []string {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	var out []string
	for id, b := range bs.m {
		b.mu.Lock()
		if b.paused && now.Before(b.pausedUntil) {
			out = append(out, id)
		}
		b.mu.Unlock()
	}
	return out
}

// unpause ends business id's pause here (the next request goes out at
// once); it reports whether it was paused.
func (bs *businesses) unpause(id string) bool {
	bs.mu.Lock()
	b := bs.m[id]
	bs.mu.Unlock()
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	was := b.paused
	b.paused, b.pausedUntil, b.failures = false, time.Time{}, 0
	return was
}

// jitter adds up to a tenth of d, so that handed-back messages do not all
// come back in the same instant.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + rand.N(d/10+1)
}

// sweepOK forgets when this sender last stored ok keys (park.go) that are
// due again anyway, so that the map stays as small as the businesses that
// sent within the last refresh.
func (s *Service) sweepOK(now time.Time) {
	s.okAt.Range(func(k, v any) bool {
		if now.Sub(v.(time.Time)) >= s.okRefresh() {
			s.okAt.CompareAndDelete(k, v)
		}
		return true
	})
}
