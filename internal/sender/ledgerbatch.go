package sender

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/pkg/ledger"
)

// ledgerFlushTimeout bounds one shared ledger round trip: it runs on a
// context of its own, since it serves many requests, not only the caller's.
const ledgerFlushTimeout = 10 * time.Second

// ledgerBatch pipelines the ledger work of requests that start or end
// together: claims, post markers and sent marks each go to Redis as one
// round trip (per node) per flush, not one per request. There is no timer:
// a call finding fewer than maxFlushes under way flushes at once, with
// whatever others queued meanwhile; calls arriving while they run go in the
// next. So an idle sender pays nothing, and a busy one batches as much as
// it waits.
type ledgerBatch struct {
	l     *ledger.Ledger
	lease time.Duration

	claims  flusher[claimCall]
	posts   flusher[postCall]
	marking flusher[markCall]

	// carry queues writes that ride on each flush's round trip (the
	// event trail and counters: internal/trail); nil: none.
	carry func(context.Context, redis.Pipeliner)
}

type claimCall struct {
	req ledger.ClaimRequest
	res []ledger.Result
}

type postCall struct {
	owner string
	err   error
}

type markCall struct{ ids []string }

func newLedgerBatch(l *ledger.Ledger, lease time.Duration) *ledgerBatch {
	b := &ledgerBatch{l: l, lease: lease}
	b.claims.run = func(ctx context.Context, calls []*claimCall) error {
		reqs := make([]ledger.ClaimRequest, len(calls))
		for i, c := range calls {
			reqs[i] = c.req
		}
		out, err := b.l.ClaimMany(ledger.WithCarry(ctx, b.carry), b.lease, reqs)
		if err != nil {
			return err
		}
		for i, c := range calls {
			c.res = out[i]
		}
		return nil
	}
	b.posts.run = func(ctx context.Context, calls []*postCall) error {
		owners := make([]string, len(calls))
		for i, c := range calls {
			owners[i] = c.owner
		}
		errs, err := b.l.PostingMany(ledger.WithCarry(ctx, b.carry), owners)
		if err != nil {
			return err
		}
		for i, c := range calls {
			c.err = errs[i]
		}
		return nil
	}
	b.marking.run = func(ctx context.Context, calls []*markCall) error {
		var ids []string
		for _, c := range calls {
			ids = append(ids, c.ids...)
		}
		return b.l.MarkSent(ledger.WithCarry(ctx, b.carry), ids)
	}
	return b
}

// Claim is ledger.Claim, pipelined with other requests' claims.
func (b *ledgerBatch) Claim(ctx context.Context, owner string, ids []string) ([]ledger.Result, error) {
	c := &claimCall{req: ledger.ClaimRequest{Owner: owner, IDs: ids}}
	if err := b.claims.do(ctx, c); err != nil {
		return nil, err
	}
	return c.res, nil
}

// Posting is ledger.Posting, pipelined with other requests' markers.
func (b *ledgerBatch) Posting(ctx context.Context, owner string) error {
	c := &postCall{owner: owner}
	if err := b.posts.do(ctx, c); err != nil {
		return err
	}
	return c.err
}

// MarkSent is ledger.MarkSent, pipelined with other requests' marks.
func (b *ledgerBatch) MarkSent(ctx context.Context, ids []string) error {
	return b.marking.do(ctx, &markCall{ids: ids})
}

// maxFlushes is how many flushes of one kind may run at once. With one, a
// call arriving just after a flush began waited for that flush and then its
// own: measured at 1,000 businesses, requests spent as long waiting for
// ledger flushes as at a 200 ms Graph. A second flush takes what queued
// meanwhile at once (on another pooled connection), so a call waits about
// one round trip, and calls still share one while both are busy.
const maxFlushes = 2

// flusher runs queued calls of one kind together.
type flusher[T any] struct {
	run func(ctx context.Context, calls []*T) error

	mu       sync.Mutex
	queue    []*T
	waiters  []chan error
	flushing int // flushes running, at most maxFlushes
}

// do queues c and returns once a flush that included it ended, with that
// flush's error. The caller's ctx only decides whether it waits: a flush
// runs on its own context, bounded by ledgerFlushTimeout.
func (f *flusher[T]) do(ctx context.Context, c *T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	f.mu.Lock()
	f.queue = append(f.queue, c)
	f.waiters = append(f.waiters, done)
	if f.flushing < maxFlushes {
		f.flushing++
		go f.flush(context.WithoutCancel(ctx))
	}
	f.mu.Unlock()
	return <-done
}

// flush runs the queue until it is empty.
func (f *flusher[T]) flush(ctx context.Context) {
	for {
		f.mu.Lock()
		calls, waiters := f.queue, f.waiters
		f.queue, f.waiters = nil, nil
		if len(calls) == 0 {
			f.flushing--
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		fctx, cancel := context.WithTimeout(ctx, ledgerFlushTimeout)
		err := f.run(fctx, calls)
		cancel()
		for _, w := range waiters {
			w <- err
		}
	}
}
