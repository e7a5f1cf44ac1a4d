package sender

import (
	"context"
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
	p := newPipeline(&Service{cfg: cfg, m: m})
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
