package sender

import (
	"cmp"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/conversion"
)

// expiryMargin keeps events a little younger than Meta's 7 days, so that one
// accepted here is not too old by the time the request reaches Meta.
const expiryMargin = 5 * time.Minute

// item is one message of a batch on its way to an outcome.
type item struct {
	msg       jetstream.Msg
	seq       uint64    // stream sequence in CONVERSIONS
	stored    time.Time // when this copy entered the stream: CONTEXT_WAIT runs from here
	published time.Time // first publish (kept through redrives): the default event_time
	delivered uint64
	conv      conversion.Conversion
	business  string
	ledgerID  string
	event     capi.Event
	followers []*item // same ledger id later in the batch: settled with this one
	done      atomic.Bool
}

// batch is one fetch's worth of messages. Its methods that settle items are
// safe for concurrent use (groups are sent concurrently).
type batch struct {
	s     *Service
	items []*item
	mu    sync.Mutex
	dead  []deadLetter
}

type deadLetter struct {
	it     *item
	reason string
	fut    jetstream.PubAckFuture
	err    error
}

// process takes one batch from fetch to the last ack.
func (s *Service) process(ctx context.Context, msgs []jetstream.Msg, keepAlive time.Duration) {
	s.m.batchSize.Observe(float64(len(msgs)))
	b := &batch{s: s, items: make([]*item, len(msgs))}
	for i, m := range msgs {
		b.items[i] = &item{msg: m}
	}
	stop := b.keepAlive(keepAlive)
	defer stop()
	now := time.Now()
	live := b.parse(now)
	live = b.join(ctx, live, now)
	groups := b.group(ctx, live)
	b.sendAll(ctx, groups)
	b.finish(ctx)
}

// parse decodes and validates every message (pkg/conversion); invalid and
// expired ones become dead letters at once, on their first delivery, before
// anything is written to the ledger.
func (b *batch) parse(now time.Time) []*item {
	live := b.items[:0:0]
	for _, it := range b.items {
		if md, err := it.msg.Metadata(); err == nil {
			it.seq, it.stored, it.delivered = md.Sequence.Stream, md.Timestamp, md.NumDelivered
		} else {
			it.stored = now
		}
		it.published = it.stored
		h := it.msg.Headers()
		if v := h.Get(HeaderPublished); v != "" {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				it.published = t
			}
		}
		c, err := conversion.Parse(it.msg.Data())
		it.conv = c
		if err != nil {
			b.deadLetter(it, ReasonInvalid, err.Error())
			continue
		}
		t := c.EventTime
		if t == 0 {
			t = it.published.Unix()
		}
		switch et := time.Unix(t, 0); {
		case now.Sub(et) > capi.MaxEventAge-expiryMargin:
			b.deadLetter(it, ReasonExpired, "event_time older than 7 days: Meta no longer accepts it")
			continue
		case et.Sub(now) > capi.MaxFutureSkew:
			b.deadLetter(it, ReasonExpired, "event_time in the future: Meta does not accept it")
			continue
		}
		it.conv.EventTime = t
		live = append(live, it)
	}
	return live
}

// keepAlive tells JetStream every interval that unsettled messages are still
// being worked on, so that a long batch (retries, splits, a slow Meta) is not
// redelivered to another sender meanwhile.
func (b *batch) keepAlive(interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, it := range b.items {
					if !it.done.Load() {
						_ = it.msg.InProgress()
					}
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// ack settles it (and its followers) as sent or duplicate.
func (b *batch) ack(it *item, outcome string) {
	if it.done.Swap(true) {
		return
	}
	_ = it.msg.Ack()
	b.s.m.count(outcome, it.conv.Channel, 1)
	for _, f := range it.followers {
		b.ack(f, outcomeDuplicate)
	}
}

// nak hands it back to come again after delay.
func (b *batch) nak(it *item, delay time.Duration, outcome string) {
	if it.done.Swap(true) {
		return
	}
	_ = it.msg.NakWithDelay(jitter(delay))
	b.s.m.count(outcome, it.conv.Channel, 1)
	for _, f := range it.followers {
		b.nak(f, time.Second, outcomeRetried)
	}
}

// deadLetter publishes it to dlq.<reason>; finish acks it once JetStream has
// stored the letter. Followers come again and settle on their own.
func (b *batch) deadLetter(it *item, reason, text string) {
	b.divert(it, deadLetterMsg(it, reason, text, time.Now()), reason)
}

// divert publishes m, a copy of it for another stream (DLQ, PARKED); finish
// acks it, counted as outcome, once JetStream has stored the copy, or hands
// it back if that failed. Followers come again and settle on their own.
func (b *batch) divert(it *item, m *nats.Msg, outcome string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := fit(ctx, b.s.js, m, m.Header.Get(jetstream.MsgIDHeader))
	cancel()
	var fut jetstream.PubAckFuture
	if err == nil {
		fut, err = b.s.js.PublishMsgAsync(m)
	}
	b.mu.Lock()
	b.dead = append(b.dead, deadLetter{it: it, reason: outcome, fut: fut, err: err})
	b.mu.Unlock()
	for _, f := range it.followers {
		b.nak(f, time.Second, outcomeRetried)
	}
}

// finish waits for the dead letters to be stored and acks their originals,
// then hands back whatever is still unsettled (a shutdown cut it short).
func (b *batch) finish(ctx context.Context) {
	var failed int
	var firstErr error
	for _, d := range b.dead {
		err := d.err
		if err == nil {
			select {
			case <-d.fut.Ok():
			case err = <-d.fut.Err():
			case <-ctx.Done():
				err = ctx.Err()
			case <-time.After(10 * time.Second):
				err = context.DeadlineExceeded
			}
		}
		if err != nil {
			failed++
			firstErr = cmp.Or(firstErr, err)
			b.nak(d.it, time.Second, outcomeRetried)
			continue
		}
		b.ack(d.it, d.reason)
	}
	if failed > 0 {
		b.s.log.Warn("dead letters or parked copies not stored; messages handed back", zap.Int("count", failed), zap.Error(firstErr))
	}
	var left int
	for _, it := range b.items {
		if !it.done.Load() {
			left++
			b.nak(it, 0, outcomeRetried)
		}
	}
	if left > 0 {
		b.s.log.Info("unfinished messages handed back", zap.Int("count", left))
	}
}
