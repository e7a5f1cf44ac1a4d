package sender

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// startedReq is a request the dispatcher started, recorded instead of run.
type startedReq struct {
	business string
	n        int
}

// recordingPipeline is a pipeline whose requests are recorded and never
// end, as a hung business's do.
func recordingPipeline(t *testing.T, cfg Config) (*pipeline, func() []startedReq) {
	t.Helper()
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := newPipeline(&Service{cfg: cfg, m: m, now: time.Now})
	var mu sync.Mutex
	var started []startedReq
	p.start = func(_ context.Context, business string, _ dataset, items []*item) {
		mu.Lock()
		defer mu.Unlock()
		started = append(started, startedReq{business, len(items)})
	}
	return p, func() []startedReq {
		p.reqs.Wait() // the recorder returns at once
		mu.Lock()
		defer mu.Unlock()
		return append([]startedReq(nil), started...)
	}
}

func items(n int) []*item {
	out := make([]*item, n)
	for i := range out {
		out[i] = &item{}
	}
	return out
}

// A business whose requests hang (they never end, holding every one of its
// MAX_INFLIGHT_PER_BUSINESS, with more of its events queued behind them)
// does not delay another business's events beyond one LINGER: the other's
// queue is due exactly one LINGER after its first event arrived, and its
// request starts then, and gets a posting slot at once. The clock is the
// dispatcher's own (dispatch takes now), so the test does not time
// anything.
func TestHungBusinessDelaysOthersAtMostOneLinger(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Linger = 100 * time.Millisecond
	cfg.MaxInflight = 4
	cfg.MaxInflightPerBusiness = 2
	p, started := recordingPipeline(t, cfg)
	hung, fine := dataset{id: "111", token: "t"}, dataset{id: "222", token: "t"}
	ctx := t.Context()

	t0 := time.Unix(1_700_000_000, 0)
	now := t0
	for range cfg.MaxInflightPerBusiness + 1 { // fill its slots, and one more waits
		p.enqueue("hung", hung, items(3), now)
		now = now.Add(cfg.Linger)
		p.dispatch(ctx, now)
	}
	var hungPosting []func()
	for range cfg.MaxInflightPerBusiness { // its requests are being posted, and hang
		release, ok := p.slot(ctx)
		if !ok {
			t.Fatal("no posting slot for the hung business")
		}
		hungPosting = append(hungPosting, release)
	}
	if got := started(); len(got) != cfg.MaxInflightPerBusiness {
		t.Fatalf("started %v; want the hung business's %d requests only", got, cfg.MaxInflightPerBusiness)
	}

	arrived := now
	p.enqueue("fine", fine, items(5), arrived)
	if next := p.dispatch(ctx, arrived); next != cfg.Linger {
		t.Fatalf("the other business's queue is due in %v; want one LINGER (%v)", next, cfg.Linger)
	}
	if got := started(); len(got) != cfg.MaxInflightPerBusiness {
		t.Fatalf("started %v before its LINGER was over", got)
	}
	p.dispatch(ctx, arrived.Add(cfg.Linger-time.Nanosecond))
	if got := started(); len(got) != cfg.MaxInflightPerBusiness {
		t.Fatalf("started %v before its LINGER was over", got)
	}
	p.dispatch(ctx, arrived.Add(cfg.Linger))
	got := started()
	if len(got) != cfg.MaxInflightPerBusiness+1 || got[len(got)-1] != (startedReq{"fine", 5}) {
		t.Fatalf("started %v; want the other business's request of 5 one LINGER after its events arrived", got)
	}
	// Its post does not wait for the hung ones: they hold only their own
	// MAX_INFLIGHT_PER_BUSINESS of the MAX_INFLIGHT slots. (The bound only
	// ends the test if this is broken; a free slot is taken at once.)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	release, ok := p.slot(sctx)
	if !ok {
		t.Fatal("the other business's request got no posting slot while the hung business held its own")
	}
	release()
	for _, r := range hungPosting {
		r()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byBiz["hung"] != cfg.MaxInflightPerBusiness || len(p.queues["hung\x00111\x00t"].items) != 3 {
		t.Errorf("hung business: %d started, %d queued; want %d started and its last 3 events still waiting",
			p.byBiz["hung"], len(p.queues["hung\x00111\x00t"].items), cfg.MaxInflightPerBusiness)
	}
}

// After SIGTERM (pipeline.stop) no post starts: a request waiting for a
// posting slot gets none, even when one frees up, and hands its events
// back untried (Service.post releases their claims).
func TestNoPostStartsAfterStop(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxInflight, cfg.MaxInflightPerBusiness = 1, 1
	p, _ := recordingPipeline(t, cfg)
	ctx := t.Context()
	release, ok := p.slot(ctx)
	if !ok {
		t.Fatal("no slot in an idle pipeline")
	}
	waited := make(chan bool)
	go func() {
		r, ok := p.slot(ctx)
		if ok {
			r()
		}
		waited <- ok
	}()
	p.stop()
	release() // the slot frees up after the stop
	if <-waited {
		t.Error("a request waiting for a slot posted after the stop")
	}
	if _, ok := p.slot(ctx); ok {
		t.Error("a request got a posting slot after the stop")
	}
}

// A stuck business (its requests hang, and its queue has started none for
// heldStuck) holds no more than MAX_HELD_PER_BUSINESS of the sender's
// messages: the dispatcher parks its newest queued events past the cap,
// while another business's events are still queued and sent. Before the
// queue counts as stuck, a busy business may hold more than the cap (a
// drain is not capped). The clock is the test's: no timing.
func TestStuckBusinessHoldsAtMostItsCap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Linger = 0
	cfg.MaxInflightPerBusiness = 1
	cfg.MaxHeldPerBusiness = 10
	p, started := recordingPipeline(t, cfg)
	var mu sync.Mutex
	parked := map[string]int{}
	p.over = func(business string, items []*item) {
		mu.Lock()
		defer mu.Unlock()
		parked[business] += len(items)
		for _, it := range items {
			p.forget(it) // as settle does once the parked copy is stored
		}
	}
	parkedOf := func(b string) int {
		p.reqs.Wait()
		mu.Lock()
		defer mu.Unlock()
		return parked[b]
	}
	hung, fine := dataset{id: "111", token: "t"}, dataset{id: "222", token: "t"}
	ctx := t.Context()
	held := func(b string) (held, queued int) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if q := p.queues[b+"\x00"+map[string]string{"hung": "111", "fine": "222"}[b]+"\x00t"]; q != nil {
			queued = len(q.items)
		}
		return p.heldBiz[b], queued
	}

	t0 := time.Unix(1_700_000_000, 0)
	hungItems := items(5)
	p.enqueue("hung", hung, hungItems, t0)
	p.dispatch(ctx, t0) // its one request starts, and hangs
	p.enqueue("hung", hung, items(30), t0)
	if next := p.dispatch(ctx, t0.Add(time.Second)); next != heldStuck-time.Second {
		t.Errorf("the dispatcher looks again in %v; want when the queue becomes stuck (%v)", next, heldStuck-time.Second)
	}
	if h, q := held("hung"); h != 35 || q != 30 || parkedOf("hung") != 0 {
		t.Fatalf("before it is stuck the business holds %d (%d queued), %d parked; want 35 (30), none parked", h, q, parkedOf("hung"))
	}

	stuck := t0.Add(heldStuck)
	p.enqueue("fine", fine, items(50), stuck)
	p.dispatch(ctx, stuck)
	if h, q := held("hung"); h != 10 || q != 5 || parkedOf("hung") != 25 {
		t.Fatalf("stuck, the business holds %d (%d queued), %d parked; want its cap of 10 (5 queued behind its request of 5), 25 parked", h, q, parkedOf("hung"))
	}
	got := started()
	if len(got) != 2 || !slices.Contains(got, startedReq{"fine", 50}) || !slices.Contains(got, startedReq{"hung", 5}) {
		t.Fatalf("started %v; want the hung business's request of 5 and the other's of 50", got)
	}
	if h, _ := held("fine"); h != 50 || parkedOf("fine") != 0 {
		t.Errorf("the other business holds %d, %d parked; want its 50 in its request, none parked", h, parkedOf("fine"))
	}

	// More of the stuck business's events: held to the cap again.
	p.enqueue("hung", hung, items(7), stuck.Add(time.Second))
	p.dispatch(ctx, stuck.Add(time.Second))
	if h, _ := held("hung"); h != 10 || parkedOf("hung") != 32 {
		t.Errorf("the business holds %d, %d parked; want 10, 32", h, parkedOf("hung"))
	}
	// Its request ends: its messages leave its count.
	for _, it := range hungItems {
		p.forget(it)
	}
	if h, _ := held("hung"); h != 5 {
		t.Errorf("after its request of 5 was settled the business holds %d; want 5", h)
	}
}

// Messages handed back for a long time (a backoff, a lease) still count
// against MAX_ACK_PENDING, so they count against MAX_HELD_PER_BUSINESS too:
// past it, handBack says park instead. Short delays always may.
func TestHandBackCountsAway(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxHeldPerBusiness = 10
	p, _ := recordingPipeline(t, cfg)
	ds := dataset{id: "111", token: "t"}
	now := time.Unix(1_700_000_000, 0)
	first := items(8)
	p.enqueue("b", ds, first, now)
	if !p.handBack("b", 8, time.Minute, now) {
		t.Fatal("8 of a cap of 10 may not be handed back")
	}
	for _, it := range first {
		p.forget(it) // the Nak
	}
	p.enqueue("b", ds, items(5), now)
	if p.handBack("b", 5, time.Minute, now) {
		t.Error("5 more handed back for a minute with 8 away; want parked (cap 10)")
	}
	if !p.handBack("b", 5, time.Second, now) {
		t.Error("a short hand-back refused; it comes again at once")
	}
	if !p.handBack("other", 5, time.Minute, now) {
		t.Error("another business's hand-back refused")
	}
	later := now.Add(time.Minute)
	if !p.handBack("b", 5, time.Minute, later) {
		t.Error("refused after the first 8 came again")
	}
	p.sweepAway(later.Add(time.Minute))
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.away) != 0 {
		t.Errorf("%d businesses still counted away after everything came again; want none", len(p.away))
	}
}

// In a backlog a queue keeps filling past LINGER while its events keep
// arriving, up to LINGER_BACKLOG; it goes at once when the backlog ends,
// when its events stop coming for a gap, or when MAX_ACK_PENDING leaves no
// room to read ahead. Without a backlog LINGER alone decides, as before.
func TestBacklogFillsRequests(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Linger = 100 * time.Millisecond
	cfg.LingerBacklog = 2 * time.Second
	cfg.BatchSize = 100
	cfg.MaxAckPending = 1000
	ds := dataset{id: "1", token: "t"}
	t0 := time.Unix(1_700_000_000, 0)
	step := 50 * time.Millisecond // under the gap (LINGER_BACKLOG/4 = 500ms)

	t.Run("no backlog", func(t *testing.T) {
		p, started := recordingPipeline(t, cfg)
		p.noteBacklog(100, 30, 0)
		p.enqueue("b", ds, items(3), t0)
		p.dispatch(t.Context(), t0.Add(cfg.Linger))
		if got := started(); len(got) != 1 || got[0].n != 3 {
			t.Fatalf("started %v; want one request of 3 after LINGER", got)
		}
	})
	t.Run("a few pending is no backlog", func(t *testing.T) {
		p, started := recordingPipeline(t, cfg)
		p.noteBacklog(100, 100, 99)
		p.enqueue("b", ds, items(3), t0)
		p.dispatch(t.Context(), t0.Add(cfg.Linger))
		if got := started(); len(got) != 1 {
			t.Fatalf("started %v; want the request after LINGER", got)
		}
	})
	t.Run("fills while events arrive, up to LINGER_BACKLOG", func(t *testing.T) {
		p, started := recordingPipeline(t, cfg)
		p.noteBacklog(100, 100, 5000)
		now := t0
		for now.Sub(t0) < cfg.LingerBacklog {
			p.enqueue("b", ds, items(1), now)
			if next := p.dispatch(t.Context(), now); next <= 0 {
				t.Fatalf("at %v the queue does not wait (next %v)", now.Sub(t0), next)
			}
			if got := started(); len(got) != 0 {
				t.Fatalf("started %v at %v; want the queue to keep filling", got, now.Sub(t0))
			}
			now = now.Add(step)
		}
		p.dispatch(t.Context(), t0.Add(cfg.LingerBacklog))
		if got := started(); len(got) != 1 || got[0].n != 40 {
			t.Fatalf("started %v; want one request of all 40 at LINGER_BACKLOG", got)
		}
	})
	t.Run("events stop coming", func(t *testing.T) {
		p, started := recordingPipeline(t, cfg)
		p.noteBacklog(100, 100, 5000)
		p.enqueue("b", ds, items(7), t0)
		if next := p.dispatch(t.Context(), t0.Add(cfg.Linger)); next != p.lingerGap()-cfg.Linger {
			t.Fatalf("next look in %v; want when the gap ends (%v)", next, p.lingerGap()-cfg.Linger)
		}
		p.dispatch(t.Context(), t0.Add(p.lingerGap()))
		if got := started(); len(got) != 1 || got[0].n != 7 {
			t.Fatalf("started %v; want the 7 once no event came for the gap", got)
		}
	})
	t.Run("the backlog ends", func(t *testing.T) {
		p, started := recordingPipeline(t, cfg)
		p.noteBacklog(100, 100, 5000)
		p.enqueue("b", ds, items(7), t0)
		p.dispatch(t.Context(), t0.Add(cfg.Linger))
		p.noteBacklog(100, 20, 0)
		p.dispatch(t.Context(), t0.Add(cfg.Linger))
		if got := started(); len(got) != 1 {
			t.Fatalf("started %v; want the request once the backlog is read", got)
		}
	})
	t.Run("LINGER=0 sends at once", func(t *testing.T) {
		c := cfg
		c.Linger = 0
		p, started := recordingPipeline(t, c)
		p.noteBacklog(100, 100, 5000)
		p.enqueue("b", ds, items(7), t0)
		p.dispatch(t.Context(), t0)
		if got := started(); len(got) != 1 {
			t.Fatalf("started %v; want the request at once with LINGER=0", got)
		}
	})
	t.Run("no room to read ahead", func(t *testing.T) {
		p, started := recordingPipeline(t, cfg)
		p.noteBacklog(100, 100, 5000)
		held := items(cfg.MaxAckPending)
		for _, it := range held {
			it.msg = nil
		}
		p.mu.Lock()
		for _, it := range held {
			p.held[it] = struct{}{}
		}
		p.mu.Unlock()
		p.enqueue("b", ds, items(7), t0)
		p.dispatch(t.Context(), t0.Add(cfg.Linger))
		if got := started(); len(got) != 1 {
			t.Fatalf("started %v; want the request at LINGER when MAX_ACK_PENDING is held", got)
		}
	})
}
