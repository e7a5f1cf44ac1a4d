package loadgen

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Load is one measured run of the HTTP generator against one endpoint.
type Load struct {
	Name     string
	Endpoint Endpoint
	Pool     *Pool
	Conns    int           // connections, one goroutine each
	Warmup   time.Duration // sent like the rest, not counted
	Duration time.Duration // the measured window after the warm-up
	// Rate, when positive, sends open loop at that many requests per second;
	// otherwise each connection sends its next request as soon as the last
	// is answered (closed loop, the maximum rate).
	Rate    float64
	Timeout time.Duration // per request; also the open loop's grace after the window
}

// Result is what a Load measured in its window.
type Result struct {
	Name     string
	Conns    int
	Rate     float64 // target rate; 0 for closed loop
	Window   time.Duration
	Codes    map[int]uint64 // responses by status code
	Errors   uint64         // requests without a response (connection errors, timeouts)
	Missed   uint64         // open loop: due in the window but never sent (generator fell behind)
	Latency  Histogram      // closed loop: request to response; open loop: due time to response
	Service  Histogram      // request written to response read (same as Latency when closed)
	Requests uint64         // responses of any status
	Total    uint64         // responses and errors including the warm-up: what the process CPU time was spent on
	// Procs and CPU are the processes watched during the run and their CPU
	// time per request (of Total); -1 where unknown. Filled by IngestBench.
	Procs  []Proc
	CPU    []time.Duration
	Busy   float64 // share of the machine's CPUs the watched processes used
	Others float64 // share used by everything else (other tenants)
}

// OK returns how many responses were 200.
func (r *Result) OK() uint64 { return r.Codes[200] }

// Throughput returns 200 responses per second of the window: only stored
// webhooks count, so a store outage cannot pass for speed.
func (r *Result) Throughput() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.OK()) / r.Window.Seconds()
}

// worker is one connection's share of a Result.
type worker struct {
	codes   [600]uint64
	other   uint64
	total   uint64
	errors  uint64
	missed  uint64
	latency Histogram
	service Histogram
}

// Run sends requests until the window ends (or ctx is done) and returns what
// it measured. reqs[i] is the request of pool item i.
func (l *Load) Run(ctx context.Context, reqs [][]byte) *Result {
	start := time.Now()
	winStart := start.Add(l.Warmup)
	end := winStart.Add(l.Duration)
	workers := make([]*worker, l.Conns)
	var next atomic.Uint64 // open loop: the next request to send
	sched := Schedule{Start: start, Rate: l.Rate}
	var wg sync.WaitGroup
	for i := range workers {
		w := new(worker)
		workers[i] = w
		wg.Go(func() {
			c := newConn(l.Endpoint.Addr, l.Timeout)
			defer c.close()
			if l.Rate > 0 {
				w.openLoop(ctx, c, reqs, l.Pool, sched, &next, winStart, end, l.Timeout)
			} else {
				w.closedLoop(ctx, c, reqs, l.Pool, winStart, end)
			}
		})
	}
	wg.Wait()
	res := &Result{Name: l.Name, Conns: l.Conns, Rate: l.Rate, Window: l.Duration, Codes: map[int]uint64{}}
	for _, w := range workers {
		for code, n := range w.codes {
			if n > 0 {
				res.Codes[code] += n
				res.Requests += n
			}
		}
		res.Codes[0] += w.other // a status outside 0..599
		res.Requests += w.other
		res.Errors += w.errors
		res.Total += w.total
		res.Missed += w.missed
		res.Latency.Merge(&w.latency)
		res.Service.Merge(&w.service)
	}
	if res.Codes[0] == 0 {
		delete(res.Codes, 0)
	}
	return res
}

func (w *worker) count(status int) {
	if status >= 0 && status < len(w.codes) {
		w.codes[status]++
	} else {
		w.other++
	}
}

// closedLoop sends back to back; responses that complete inside the window
// are counted.
func (w *worker) closedLoop(ctx context.Context, c *conn, reqs [][]byte, p *Pool, winStart, end time.Time) {
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		status, err := c.do(reqs[p.Next()])
		t1 := time.Now()
		w.total++
		if t1.Before(winStart) || !t1.Before(end) {
			continue
		}
		if err != nil {
			w.errors++
			pause(ctx) // do not spin on a dead server
			continue
		}
		w.count(status)
		w.latency.Record(t1.Sub(t0))
		w.service.Record(t1.Sub(t0))
	}
}

// openLoop takes the next due request, waits for its time, sends it, and
// measures from the due time. Requests due in the window but still unsent
// grace after it ends count as missed.
func (w *worker) openLoop(ctx context.Context, c *conn, reqs [][]byte, p *Pool, s Schedule,
	next *atomic.Uint64, winStart, end time.Time, grace time.Duration) {
	for ctx.Err() == nil {
		due := s.Due(next.Add(1) - 1)
		if !due.Before(end) {
			return
		}
		counted := !due.Before(winStart)
		if d := time.Until(due); d > 0 {
			sleep(ctx, d)
		}
		t0 := time.Now()
		if t0.After(end.Add(grace)) {
			if counted {
				w.missed++
			}
			continue
		}
		status, err := c.do(reqs[p.Next()])
		t1 := time.Now()
		w.total++
		if !counted {
			continue
		}
		if err != nil {
			w.errors++
			pause(ctx)
			continue
		}
		w.count(status)
		w.latency.Record(t1.Sub(due))
		w.service.Record(t1.Sub(t0))
	}
}

// pause backs off briefly after a connection error.
func pause(ctx context.Context) { sleep(ctx, 10*time.Millisecond) }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
