package sender

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/pkg/capi"
)

// pipeline decouples fetching from posting. The fetch loops put each
// fetched conversion, once parsed, joined and its dataset found, in the
// queue of its business and dataset; a dispatcher starts a request for a
// queue when it holds capi.MaxBatch events or its oldest has waited LINGER,
// as long as fewer than 2·MAX_INFLIGHT requests are started in all and fewer
// than MAX_INFLIGHT_PER_BUSINESS for that business; a started request claims
// its events, then waits for one of MAX_INFLIGHT slots to post in. Each request settles
// its own messages when it ends, so a slow or hung business holds only its
// own messages and at most its share of the slots, never another's.
//
// Everything fetched and not yet settled is held: kept alive with
// InProgress every AckWait/3, and bounded by MAX_ACK_PENDING (JetStream
// delivers no more) and QUEUE_MEMORY (the fetch loops wait for room).
type pipeline struct {
	s           *Service
	linger      time.Duration
	lingerLong  time.Duration // LINGER_BACKLOG
	maxInflight int
	perBusiness int
	maxBytes    int64
	maxHeldBiz  int // MAX_HELD_PER_BUSINESS, at most MAX_ACK_PENDING/4: see trim and handBack

	mu         sync.Mutex
	held       map[*item]struct{}
	heldBytes  int64
	heldBiz    map[string]int   // messages queued or in requests, per business
	away       map[string]*away // messages handed back for heldStuck or longer, per business
	queues     map[string]*queue
	waiting    []*queue       // queues with events, oldest first (roughly: a remainder goes to the back)
	started    int            // requests started and not yet settled: at most maxStarted
	byBiz      map[string]int // requests started per business: at most perBusiness
	posting    int            // requests holding a slot (being posted): at most maxInflight
	peak       int            // the most posting at once
	stopping   bool
	maxStarted int
	backlog    bool // the last fetch left a fetch's worth or more pending (noteBacklog)

	slots chan struct{} // MAX_INFLIGHT: one per request being posted

	// start runs one request (p.request; tests record instead).
	start func(ctx context.Context, business string, ds dataset, items []*item)
	// over settles events trimmed off a stuck business's queue (p.park;
	// tests record instead).
	over func(business string, items []*item)

	wake chan struct{} // a queue or a slot changed
	room chan struct{} // something held was settled
	reqs sync.WaitGroup
}

// startedPerSlot is how many requests may be started (claiming, posting,
// marking sent, settling) per MAX_INFLIGHT slot. Only the post itself holds
// a slot: measured at 1,000 businesses and a 200 ms Graph, a request spent
// about as long in its three ledger round trips (claim, post marker, sent
// marks; each a shared flush, which a request may wait for twice) as at
// the Graph, and when the ledger stages held slots too, half of them sat
// waiting for Redis while the Graph had room. Twice as many started as
// posting keeps the Graph's slots busy while others claim and mark.
const startedPerSlot = 2

// queue is the events of one business waiting for a request to one dataset
// with one token.
type queue struct {
	key      string
	business string
	ds       dataset
	items    []*item
	first    time.Time // when the oldest waiting event arrived
	last     time.Time // when the newest arrived
}

func newPipeline(s *Service) *pipeline {
	p := &pipeline{
		s: s, linger: s.cfg.Linger, lingerLong: s.cfg.LingerBacklog, maxInflight: s.cfg.MaxInflight, perBusiness: s.cfg.MaxInflightPerBusiness,
		maxBytes: s.cfg.QueueMemory, held: map[*item]struct{}{}, queues: map[string]*queue{}, byBiz: map[string]int{},
		wake: make(chan struct{}, 1), room: make(chan struct{}, 1),
		maxStarted: startedPerSlot * s.cfg.MaxInflight, slots: make(chan struct{}, s.cfg.MaxInflight),
	}
	p.maxHeldBiz = max(min(s.cfg.MaxHeldPerBusiness, s.cfg.MaxAckPending/4), 1)
	p.heldBiz, p.away = map[string]int{}, map[string]*away{}
	p.start = p.request
	p.over = p.park
	return p
}

// park parks events trimmed off a stuck business's queue (trim).
func (p *pipeline) park(business string, items []*item) {
	var ss settlements
	ss.addAll(items, park(business).because("its business held MAX_HELD_PER_BUSINESS messages while none of its requests started for 5s (hung?)"))
	p.s.settle(ss)
}

// slot waits for one of MAX_INFLIGHT slots to post a request in and returns
// its release; false when ctx ended first or the sender is shutting down
// (no post starts after SIGTERM). A request takes it after its claim and
// gives it back when Meta answered, before marking sent.
func (p *pipeline) slot(ctx context.Context) (release func(), ok bool) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false
	}
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		<-p.slots
		return nil, false
	}
	p.posting++
	if p.posting > p.peak {
		p.peak = p.posting
		p.s.m.inflightPeak.Set(float64(p.peak))
	}
	p.s.m.inflight.Set(float64(p.posting))
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		p.posting--
		p.s.m.inflight.Set(float64(p.posting))
		p.mu.Unlock()
		<-p.slots
	}, true
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// admit waits until the pipeline has room for a fetch and returns how many
// messages it may fetch (0 when ctx ended first).
func (p *pipeline) admit(ctx context.Context, want int) int {
	for {
		p.mu.Lock()
		room := p.s.cfg.MaxAckPending - len(p.held)
		full := p.heldBytes >= p.maxBytes
		p.mu.Unlock()
		if room > 0 && !full {
			return min(want, room)
		}
		select {
		case <-ctx.Done():
			return 0
		case <-p.room:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// hold records fetched messages as the pipeline's until they are settled.
func (p *pipeline) hold(items []*item) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, it := range items {
		p.held[it] = struct{}{}
		p.heldBytes += int64(len(it.msg.Data()))
	}
}

// forget drops a settled message from what the pipeline holds.
func (p *pipeline) forget(it *item) {
	p.mu.Lock()
	if _, ok := p.held[it]; ok {
		delete(p.held, it)
		p.heldBytes -= int64(len(it.msg.Data()))
	}
	if b := it.heldBy; b != "" {
		it.heldBy = ""
		if p.heldBiz[b]--; p.heldBiz[b] <= 0 {
			delete(p.heldBiz, b)
		}
	}
	p.mu.Unlock()
	signal(p.room)
}

// heldStuck is how long a queue may go without a request of its own
// starting before its business counts as stuck (its requests hang, say) and
// MAX_HELD_PER_BUSINESS applies. A business that drains, however big its
// backlog, starts a request every few hundred milliseconds (its
// MAX_INFLIGHT_PER_BUSINESS requests each take one Graph round trip).
const heldStuck = 5 * time.Second

// enqueue puts a business's events for ds in their queue. During a
// shutdown nothing new starts: it returns them to be handed back.
func (p *pipeline) enqueue(business string, ds dataset, items []*item, now time.Time) (rejected []*item) {
	key := business + "\x00" + ds.id + "\x00" + ds.token
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		return items
	}
	q := p.queues[key]
	for _, it := range items {
		if it.heldBy == "" {
			it.heldBy = business
			p.heldBiz[business]++
		}
	}
	if q == nil {
		q = &queue{key: key, business: business, ds: ds}
		p.queues[key] = q
	}
	if len(q.items) == 0 {
		q.first = now
		p.waiting = append(p.waiting, q)
	}
	q.items = append(q.items, items...)
	q.last = now
	p.s.m.queued.Add(float64(len(items)))
	p.mu.Unlock()
	signal(p.wake)
	return nil
}

// run dispatches until ctx ends, then hands back what is queued, lets the
// requests in flight finish (within SHUTDOWN_TIMEOUT, after which cancel
// cuts them off) and returns.
func (p *pipeline) run(ctx context.Context, reqCtx context.Context, cancel context.CancelFunc) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		next := p.dispatch(reqCtx, p.s.now())
		if next <= 0 {
			next = time.Hour
		}
		timer.Reset(next)
		select {
		case <-ctx.Done():
		case <-p.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
	p.stop()
	done := make(chan struct{})
	go func() { p.reqs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(p.s.cfg.ShutdownTimeout):
		p.s.log.Warn("requests still in flight at SHUTDOWN_TIMEOUT; cutting them off")
		cancel()
		<-done
	}
}

// stop starts no more requests and hands back every queued event, untried.
func (p *pipeline) stop() {
	p.mu.Lock()
	p.stopping = true
	var left []*item
	for _, q := range p.waiting {
		left = append(left, q.items...)
		q.items = nil
	}
	p.waiting, p.queues = nil, map[string]*queue{}
	p.s.m.queued.Set(0)
	p.mu.Unlock()
	if len(left) > 0 {
		p.s.log.Info("shutting down: queued messages handed back", zap.Int("count", len(left)))
		var ss settlements
		ss.addAll(left, retry(0))
		p.s.settle(ss)
	}
}

// dispatch starts every request it may now and returns when it should look
// again for a lingering queue (0: when woken). Queues are served oldest
// first; one that still has events after a request goes to the back, so
// that a busy business takes turns with the others.
func (p *pipeline) dispatch(ctx context.Context, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var next time.Duration
	// Reading ahead fills requests only while there is more to read and
	// room to hold it.
	readAhead := p.backlog && len(p.held) < p.s.cfg.MaxAckPending && p.heldBytes < p.maxBytes
	kept := p.waiting[:0]
	var again []*queue
	for i, q := range p.waiting {
		if p.started >= p.maxStarted {
			kept = append(kept, p.waiting[i:]...)
			break
		}
		if wait := p.fillWait(q, now, readAhead); wait > 0 {
			kept = append(kept, q)
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		if p.linger > 0 && len(q.items) < capi.MaxBatch {
			if wait := p.linger - now.Sub(q.first); wait > 0 {
				kept = append(kept, q)
				if next == 0 || wait < next {
					next = wait
				}
				continue
			}
		}
		if p.byBiz[q.business] >= p.perBusiness {
			if wait := p.trim(q, now); wait > 0 && (next == 0 || wait < next) {
				next = wait
			}
			if len(q.items) == 0 {
				delete(p.queues, q.key)
			} else {
				kept = append(kept, q)
			}
			continue
		}
		n := min(len(q.items), capi.MaxBatch)
		items := q.items[:n:n]
		if n == len(q.items) {
			q.items = nil
			delete(p.queues, q.key)
		} else {
			q.items = q.items[n:]
			q.first = now.Add(-p.linger) // it waited long enough already
			again = append(again, q)
		}
		p.s.m.queued.Sub(float64(n))
		p.started++
		p.byBiz[q.business]++
		business, ds := q.business, q.ds
		p.reqs.Go(func() { p.start(ctx, business, ds, items) })
	}
	p.waiting = append(kept, again...)
	clear(p.waiting[len(p.waiting):cap(p.waiting)]) // drop references to queues served
	return next
}

// lingerGap is how long a queue in a backlog waits for its next event:
// longer without one, its business's events have stopped coming (its part
// of the backlog was read) and the request goes.
func (p *pipeline) lingerGap() time.Duration { return max(p.linger, p.lingerLong/4) }

// fillWait is how much longer q should wait to fill its request while the
// consumer has a backlog that the pipeline can read ahead into (see the
// type's comment); 0: no reason to wait beyond LINGER. Called with p.mu held.
func (p *pipeline) fillWait(q *queue, now time.Time, readAhead bool) time.Duration {
	// LINGER=0 asks for requests at once, backlog or not.
	if !readAhead || p.linger == 0 || p.lingerLong <= p.linger || len(q.items) >= capi.MaxBatch {
		return 0
	}
	bound := p.lingerLong - now.Sub(q.first)
	gap := p.lingerGap() - now.Sub(q.last)
	if bound <= 0 || gap <= 0 {
		return 0
	}
	return min(bound, gap)
}

// noteBacklog records what a fetch of want messages found: got of them,
// the last with pending more behind it in the stream. A backlog is a full
// fetch with a fetch's worth or more behind it: at 1,000/s a fetch also
// leaves a few pending, which must not make requests wait.
func (p *pipeline) noteBacklog(want, got int, pending uint64) {
	b := got >= want && pending >= uint64(p.s.cfg.BatchSize)
	p.mu.Lock()
	changed := p.backlog != b
	p.backlog = b
	p.mu.Unlock()
	if changed && !b {
		signal(p.wake) // queues held for the backlog may go now
	}
}

// away counts a business's messages handed back with a long delay (a
// backoff, a lease to wait out): JetStream counts them against
// MAX_ACK_PENDING until they come again.
type away struct {
	back  []awayBatch // in the order handed back
	total int
}

type awayBatch struct {
	until time.Time
	n     int
}

// handBack reports whether n messages of business may be handed back for
// d, counting them as away until then; false when that would take the
// business past MAX_HELD_PER_BUSINESS (held here and away), and the caller
// parks them instead (see trim for why). Short delays always may: those
// messages come again at once.
func (p *pipeline) handBack(business string, n int, d time.Duration, now time.Time) bool {
	if d < heldStuck {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.away[business]
	if a == nil {
		a = &away{}
		p.away[business] = a
	}
	i := 0
	for ; i < len(a.back) && !a.back[i].until.After(now); i++ {
		a.total -= a.back[i].n
	}
	a.back = a.back[i:]
	// The n being handed back are still counted in heldBiz (forget comes
	// after the Nak), so held and away together stay as they are.
	if a.total+p.heldBiz[business] > p.maxHeldBiz {
		if a.total == 0 {
			delete(p.away, business)
		}
		return false
	}
	a.back = append(a.back, awayBatch{now.Add(d), n})
	a.total += n
	return true
}

// sweepAway forgets businesses whose messages handed back have all come
// again, so that the map does not grow with every business ever backed off.
func (p *pipeline) sweepAway(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for b, a := range p.away {
		if len(a.back) == 0 || !a.back[len(a.back)-1].until.After(now) {
			delete(p.away, b)
		}
	}
}

// trim parks the newest queued events of a stuck business past
// MAX_HELD_PER_BUSINESS: a queue waiting for its business's requests that
// has started none for heldStuck (they hang, say). Else a hung business
// would keep each fetch's share of its messages, queued and then handed back
// for SEND_LEASE, until they filled most of MAX_ACK_PENDING, past which
// JetStream delivers to nobody. Parked (stream PARKED, as for a pause), they
// are acked, so they no longer count against MAX_ACK_PENDING, and the unpark
// loop brings them back once the business answers again (park.go). A
// business that drains starts requests all the time and is never trimmed,
// however big its backlog. It returns when to look again (0: when woken),
// for a queue that may become stuck. Called with p.mu held.
func (p *pipeline) trim(q *queue, now time.Time) time.Duration {
	excess := p.heldBiz[q.business] - p.maxHeldBiz
	if excess <= 0 || len(q.items) == 0 {
		return 0
	}
	if wait := heldStuck - now.Sub(q.first); wait > 0 {
		return wait
	}
	n := min(excess, len(q.items))
	over := q.items[len(q.items)-n:]
	q.items = q.items[: len(q.items)-n : len(q.items)-n]
	for _, it := range over {
		it.heldBy = ""
	}
	if p.heldBiz[q.business] -= n; p.heldBiz[q.business] <= 0 {
		delete(p.heldBiz, q.business)
	}
	p.s.m.queued.Sub(float64(n))
	business := q.business
	p.reqs.Go(func() { p.over(business, over) })
	return 0
}

// request posts one request's events and settles them by its answer.
func (p *pipeline) request(ctx context.Context, business string, ds dataset, items []*item) {
	defer func() {
		p.mu.Lock()
		p.started--
		if p.byBiz[business]--; p.byBiz[business] <= 0 {
			delete(p.byBiz, business)
		}
		p.mu.Unlock()
		signal(p.wake)
	}()
	p.s.m.eventsPerRequest.Observe(float64(len(items)))
	p.s.settle(p.s.send(ctx, business, ds, items))
}

// keepAlive tells JetStream every interval that the held messages are
// still being worked on, so that one waiting in a queue or in a slow
// request is not redelivered to another sender meanwhile.
func (p *pipeline) keepAlive(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var items []*item
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		items = items[:0]
		for it := range p.held {
			items = append(items, it)
		}
		p.mu.Unlock()
		var failed int
		var first error
		for _, it := range items {
			if it.settled.Load() {
				continue
			}
			// Settled since the copy above: its ack won the race, nothing is wrong.
			if err := it.msg.InProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
				failed++
				first = cmp.Or(first, err)
			}
		}
		if failed > 0 {
			p.s.log.Warn("in-progress ack failed; jetstream may redeliver these messages to another sender, whose claim then waits for ours",
				zap.Int("count", failed), zap.Error(first))
		}
		clear(items)
	}
}

// peakInflight is the most requests that were being posted at once.
func (p *pipeline) peakInflight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}
