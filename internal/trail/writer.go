package trail

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// FlushAfter is how long buffered writes wait for a ledger round trip to
// carry them before Run flushes them on their own.
const FlushAfter = 250 * time.Millisecond

// hsetFields is the most records one HSET of a flush writes.
const hsetFields = 256

// CarryMax is the most records a ledger round trip carries. More wait for
// Run's own flush: carried, a busy sender's thousands of records made every
// claim and sent mark wait for their HSETs, on the path of every event, and
// cost 18-43% of its throughput (BenchmarkTrailOnOff: 0.82 and 0.57 on/off,
// against 0.96 flushed on their own). So a quiet sender's few records ride
// along for free, and a busy one's go in one round trip per FlushAfter.
const CarryMax = 64

// Writer buffers trail records and counter increments until a round trip
// takes them (Drain) or Run flushes them. It is safe for concurrent use.
// A write lost with its round trip (Redis away) is not written again: the
// event's next change writes its trail anew, and the counters are
// statistics, not accounts. A nil *Writer writes nothing.
type Writer struct {
	ttl time.Duration // of a record: SENT_TTL

	mu        sync.Mutex
	puts      map[hourOf][]any            // a business's hour hash → its event_id, record pairs
	counts    map[string]map[string]int64 // key → field → increment
	last      map[string]int64            // business → last accepted (unix ms)
	attempts  map[string][]any            // business → attempt entries, oldest first (attempts.go)
	hist      map[hourOf][]any            // a business's hour hash → event_id, change line pairs (history.go)
	since     time.Time                   // when the oldest buffered write came
	countsOff bool                        // the store cannot count (CanCount)
	n         int                         // records buffered
	// The keys of the current minute and hours, built once, not per event.
	minute    int64
	minuteKey string
	hourKeys  map[string]hourKeyOf
}

type hourKeyOf struct {
	hour int64
	key  string
}

type hourOf struct {
	business string
	hour     int64
}

// NewWriter returns a Writer keeping records for ttl.
func NewWriter(ttl time.Duration) *Writer {
	return &Writer{ttl: ttl, puts: map[hourOf][]any{}, counts: map[string]map[string]int64{}, last: map[string]int64{}}
}

func (w *Writer) touch(now time.Time) {
	if w.since.IsZero() {
		w.since = now
	}
}

// Put buffers r as its event's trail. (A duplicate's record does not hide
// the sent one: Read looks past it.)
func (w *Writer) Put(r *Record) {
	if w == nil || r.BusinessID == "" || r.EventID == "" {
		return // nothing to key it by (an undecodable message)
	}
	v := r.appendJSON(make([]byte, 0, 320), false)
	w.mu.Lock()
	k := hourOf{r.BusinessID, r.UpdatedAt.Unix() / 3600}
	w.puts[k] = append(w.puts[k], r.EventID, v)
	w.addChange(k, r)
	w.n++
	w.touch(r.UpdatedAt.Time)
	w.mu.Unlock()
}

// Count adds n to field of the minute of at and, when business is not
// empty, to field of business's hour of at.
func (w *Writer) Count(business string, at time.Time, field string, n int64) {
	if w == nil {
		return
	}
	w.mu.Lock()
	if w.countsOff {
		w.mu.Unlock()
		return
	}
	if m := at.Unix() / 60; m != w.minute || w.minuteKey == "" {
		w.minute, w.minuteKey = m, minuteKey(at)
	}
	w.add(w.minuteKey, field, n)
	if business != "" {
		if w.hourKeys == nil || len(w.hourKeys) > 10000 {
			w.hourKeys = map[string]hourKeyOf{}
		}
		hk, h := w.hourKeys[business], at.Unix()/3600
		if hk.key == "" || hk.hour != h {
			hk = hourKeyOf{h, businessKey(business, at)}
			w.hourKeys[business] = hk
		}
		w.add(hk.key, field, n)
	}
	w.touch(time.Now())
	w.mu.Unlock()
}

// Latency counts one Graph request of duration d in its bucket.
func (w *Writer) Latency(at time.Time, d time.Duration) {
	w.Count("", at, latencyField(d), 1)
}

// Accepted records that Meta accepted business's events at at.
func (w *Writer) Accepted(business string, at time.Time) {
	if w == nil {
		return
	}
	w.mu.Lock()
	if ms := at.UnixMilli(); ms > w.last[business] {
		w.last[business] = ms
	}
	w.touch(time.Now())
	w.mu.Unlock()
}

func (w *Writer) add(key, field string, n int64) {
	m := w.counts[key]
	if m == nil {
		m = map[string]int64{}
		w.counts[key] = m
	}
	m[field] += n
}

// Carry is Drain for a round trip made anyway (a ledger round trip): it
// takes the buffer only while it holds at most CarryMax records.
func (w *Writer) Carry(ctx context.Context, p redis.Pipeliner) {
	if w == nil {
		return
	}
	w.mu.Lock()
	n := w.n
	w.mu.Unlock()
	if n > CarryMax {
		return
	}
	w.Drain(ctx, p)
}

// Drain queues every buffered write on p and empties the buffer.
func (w *Writer) Drain(ctx context.Context, p redis.Pipeliner) {
	if w == nil {
		return
	}
	w.mu.Lock()
	puts, counts, last, attempts := w.puts, w.counts, w.last, w.attempts
	if len(puts) == 0 && len(counts) == 0 && len(last) == 0 && len(attempts) == 0 && len(w.hist) == 0 {
		w.mu.Unlock()
		return
	}
	w.puts, w.counts, w.last, w.since, w.n = map[hourOf][]any{}, map[string]map[string]int64{}, map[string]int64{}, time.Time{}, 0
	hist := w.hist
	w.attempts, w.hist = nil, nil
	w.mu.Unlock()
	drainAttempts(ctx, p, attempts)
	drainHistory(ctx, p, hist)
	for k, pairs := range puts {
		key := hourKey(k.business, k.hour)
		// In HSETs of hsetFields at most: Redis runs a command whole, so one
		// of a busy flush's 20,000 records would hold every other client
		// (the ledger's claims and marks) for milliseconds.
		for len(pairs) > 2*hsetFields {
			p.HSet(ctx, key, pairs[:2*hsetFields]...)
			pairs = pairs[2*hsetFields:]
		}
		p.HSet(ctx, key, pairs...)
		// Kept SENT_TTL after its hour ends.
		p.ExpireAt(ctx, key, time.Unix((k.hour+1)*3600, 0).Add(w.ttl))
	}
	for key, fields := range counts {
		for f, v := range fields {
			p.HIncrBy(ctx, key, f, v)
		}
		p.Expire(ctx, key, statsTTL)
	}
	for b, ms := range last {
		// Written by every sender; a slightly older value from a slower one
		// may win for a moment, which a health page can live with.
		p.Set(ctx, lastAcceptedKey(b), strconv.FormatInt(ms, 10), statsTTL)
	}
}

// due reports whether buffered writes have waited FlushAfter.
func (w *Writer) due(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.since.IsZero() && now.Sub(w.since) >= FlushAfter
}

// Flush writes what is buffered in a round trip of its own.
func (w *Writer) Flush(ctx context.Context, rdb redis.UniversalClient) error {
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		w.Drain(ctx, p)
		return nil
	})
	return err
}

// Run flushes what no round trip took within FlushAfter until ctx ends,
// and once more then. Errors go to onErr (nil: dropped).
func (w *Writer) Run(ctx context.Context, rdb redis.UniversalClient, onErr func(error)) {
	t := time.NewTicker(FlushAfter / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := w.Flush(fctx, rdb); err != nil && onErr != nil {
				onErr(err)
			}
			cancel()
			return
		case now := <-t.C:
			if !w.due(now) {
				continue
			}
			fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := w.Flush(fctx, rdb); err != nil && onErr != nil && ctx.Err() == nil {
				onErr(err)
			}
			cancel()
		}
	}
}

// CountsOff stops the counters (a store that cannot keep them; see
// CanCount); records are still written.
func (w *Writer) CountsOff() {
	w.mu.Lock()
	w.countsOff = true
	w.counts, w.last = map[string]map[string]int64{}, map[string]int64{}
	w.mu.Unlock()
}

// CanCount asks the store once whether it keeps hashes (HINCRBY), which
// the counters need: an embedded store without them refuses the command,
// and a refused command in a pipeline makes the client dial again, so the
// counters must not be sent there at all. Errors other than a refusal
// (the store away) count as yes: the writes are then just lost.
func CanCount(ctx context.Context, rdb redis.UniversalClient) bool {
	err := rdb.HIncrBy(ctx, "ctm:stats:probe", "n", 0).Err()
	var re redis.Error
	return !errors.As(err, &re)
}
