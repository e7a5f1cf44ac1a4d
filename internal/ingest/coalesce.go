package ingest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// Write coalescing. Under load, the Redis round trip (two syscalls here and
// a Lua call there per webhook) costs more than verifying and parsing. So
// concurrent webhooks share round trips: at most maxFlushers writes are in
// flight; a webhook arriving while they all are joins a queue, and the next
// write takes the whole queue in one Record call (group commit). A lone
// webhook still writes at once: coalescing adds no delay, only sharing.
//
// Every webhook still gets 200 only after the write that carried its
// touches succeeded. There is no background goroutine: the webhooks'
// own goroutines do the writes, and a flusher hands the next write to the
// oldest waiter, so each request writes at most one batch and waits for at
// most the batches ahead of it.
const (
	maxFlushers   = 4   // concurrent writes: enough to keep Redis busy, few enough to batch
	maxBatchTouch = 512 // touches in one write
)

// coalescer is a recorder that batches concurrent Record calls into fewer
// calls to next.
type coalescer struct {
	next    recorder
	timeout time.Duration
	dur     prometheus.Observer // one observation per write
	size    prometheus.Observer // webhooks per write

	mu       sync.Mutex
	pending  []*writeReq
	flushing int
}

// writeReq is one Record call waiting for a write.
type writeReq struct {
	ctx     context.Context
	touches []attribution.Touch
	done    chan writeResult
}

// writeResult answers a waiting writeReq: its error, or the turn to flush.
type writeResult struct {
	err  error
	lead bool
}

func newCoalescer(next recorder, timeout time.Duration, dur, size prometheus.Observer) *coalescer {
	return &coalescer{next: next, timeout: timeout, dur: dur, size: size}
}

// Record stores touches, possibly in one write with other calls. ctx only
// decides whether the call is still wanted when its turn comes; the write
// itself is bounded by the store timeout, since it carries other calls'
// touches too.
func (c *coalescer) Record(ctx context.Context, touches []attribution.Touch) error {
	req := &writeReq{ctx: ctx, touches: touches}
	c.mu.Lock()
	if c.flushing >= maxFlushers {
		req.done = make(chan writeResult, 1)
		c.pending = append(c.pending, req)
		c.mu.Unlock()
		select {
		case r := <-req.done:
			if !r.lead {
				return r.err
			}
		case <-ctx.Done():
			// RESPONSE_DEADLINE: leave the queue, unless a flush has
			// taken this request already or handed it the next flush,
			// which must not be stranded (the write it then does is
			// bounded by the earliest deadline it carries).
			if c.abandon(req) {
				return ctx.Err()
			}
			if r := <-req.done; !r.lead {
				return r.err
			}
		}
	} else {
		c.flushing++
		c.mu.Unlock()
	}
	return c.flush(req)
}

// abandon takes req out of the queue and reports whether it was still
// there.
func (c *coalescer) abandon(req *writeReq) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, r := range c.pending {
		if r == req {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return true
		}
	}
	return false
}

// flush writes own and as much of the queue as fits in one batch, answers
// the queued calls, and hands the next flush to the oldest waiter (or gives
// up its flushing slot when nobody waits).
func (c *coalescer) flush(own *writeReq) error {
	batch := []*writeReq{own}
	n := len(own.touches)
	c.mu.Lock()
	taken := 0
	for _, r := range c.pending {
		if n+len(r.touches) > maxBatchTouch {
			break
		}
		batch = append(batch, r)
		n += len(r.touches)
		taken++
	}
	c.pending = c.pending[taken:]
	c.mu.Unlock()

	errs := c.write(batch, n)
	for i, r := range batch[1:] {
		r.done <- writeResult{err: errs[i+1]}
	}

	c.mu.Lock()
	if len(c.pending) > 0 {
		next := c.pending[0]
		c.pending = c.pending[1:]
		c.mu.Unlock()
		next.done <- writeResult{lead: true}
	} else {
		c.flushing--
		c.mu.Unlock()
	}
	return errs[0]
}

// write records the batch in one call and returns each request's error.
// Requests whose caller has gone are skipped. Ingest drops invalid touches
// before they get here (attribution.Touch.Validate), so the store should
// never refuse a batch; should it still do so (ErrInvalidTouch, which stores
// nothing), each request is written alone, at most one call per request,
// so that one bad caller does not fail the others.
func (c *coalescer) write(batch []*writeReq, n int) []error {
	errs := make([]error, len(batch))
	touches := make([]attribution.Touch, 0, n)
	live := 0
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		touches = append(touches, r.touches...)
		live++
	}
	if live == 0 {
		return errs
	}
	err := c.record(touches, live, earliest(batch, errs))
	if errors.Is(err, attribution.ErrInvalidTouch) && live > 1 {
		for i, r := range batch {
			if errs[i] == nil {
				errs[i] = c.record(r.touches, 1, earliest(batch[i:i+1], errs[i:i+1]))
			}
		}
		return errs
	}
	for i := range batch {
		if errs[i] == nil {
			errs[i] = err
		}
	}
	return errs
}

// earliest returns the earliest deadline of the live requests of batch (zero
// when none has one).
func earliest(batch []*writeReq, errs []error) time.Time {
	var t time.Time
	for i, r := range batch {
		if d, ok := r.ctx.Deadline(); ok && errs[i] == nil && (t.IsZero() || d.Before(t)) {
			t = d
		}
	}
	return t
}

// record is one store call, bounded by the store timeout and by the
// earliest RESPONSE_DEADLINE it carries: nobody waits for it past that.
func (c *coalescer) record(touches []attribution.Touch, requests int, deadline time.Time) error {
	if d := time.Now().Add(c.timeout); deadline.IsZero() || d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := c.next.Record(ctx, touches)
	c.dur.Observe(time.Since(start).Seconds())
	c.size.Observe(float64(requests))
	return err
}
