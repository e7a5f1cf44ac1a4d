package ingest

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// Statistics. Ingest counts the webhook deliveries it stored and their ad
// clicks (contexts) per minute (trail.MinuteKey: GET /v1/stats) and per
// business and hour (trail.BusinessKey: business health in the registry
// API and the console), in memory, and writes them once a second in one
// pipelined round trip of HINCRBYs and one EXPIRE per key. They used to
// ride on every context write as a script call per hash, which cost a
// quarter of ingest's throughput (issue 23); counted in memory they cost a
// lock and a map update per webhook, and Redis a few commands a second.
//
// A crash loses at most the last second of statistics, never a context:
// the contexts are written before the 200, the counters after it.
const (
	// statsFlushEvery is how often the counters are written.
	statsFlushEvery = time.Second
	// statsFlushTimeout bounds one write of the counters, the last one at
	// shutdown included.
	statsFlushTimeout = 2 * time.Second
	// maxStatsBuckets bounds the minutes and business-hours held in memory
	// (about 100 bytes each, 10 MB at most). They pile up only while Redis
	// is away: a flush that fails keeps its counts for the next one.
	// Buckets older than trail.StatsTTL, which nobody reads any more, are
	// dropped then; past the bound, increments of buckets not yet held are
	// dropped and counted in ingest_stats_dropped_total.
	maxStatsBuckets = 100_000
)

// statsBucket names one counter hash: business "" is the minute's hash
// (unit: unix minute), else the business's hour (unit: unix hour).
type statsBucket struct {
	business string
	unit     int64
}

func (b statsBucket) key() string {
	if b.business == "" {
		return trail.MinuteKey(time.Unix(b.unit*60, 0))
	}
	return trail.BusinessKey(b.business, time.Unix(b.unit*3600, 0))
}

func (b statsBucket) start() time.Time {
	if b.business == "" {
		return time.Unix(b.unit*60, 0)
	}
	return time.Unix(b.unit*3600, 0)
}

// statsCount is what a bucket has to add to its hash. expire: its EXPIRE
// is still owed (one failed while its increments got through).
type statsCount struct {
	webhooks, contexts int64
	expire             bool
}

// stats counts in memory and flushes to Redis. It is safe for concurrent
// use.
type stats struct {
	rdb     redis.UniversalClient
	log     *zap.Logger
	dropped prometheus.Counter
	// Now is the clock that puts counts in their minute and hour and ages
	// them; time.Now unless a test moves it.
	Now func() time.Time
	// every is how often run flushes: statsFlushEvery.
	every time.Duration

	asked sync.Once   // whether the store keeps hashes (trail.CanCount)
	off   atomic.Bool // it does not: nothing is counted
	// flushMu makes flushes one at a time (the ticker's and shutdown's), so
	// that a failed flush's counts are back before the next takes them.
	flushMu sync.Mutex

	mu      sync.Mutex
	pending map[statsBucket]*statsCount
	failing bool      // the last flush failed
	warned  time.Time // when a failed flush was last logged
}

func newStats(rdb redis.UniversalClient, log *zap.Logger, dropped prometheus.Counter) *stats {
	return &stats{rdb: rdb, log: log, dropped: dropped, Now: time.Now, every: statsFlushEvery, pending: map[statsBucket]*statsCount{}}
}

// count adds one stored delivery and its touches (the contexts it wrote).
func (s *stats) count(touches []attribution.Touch) {
	if s.off.Load() {
		return
	}
	now := s.Now().Unix()
	minute, hour := now/60, now/3600
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.bucket(statsBucket{unit: minute}); c != nil {
		c.webhooks++
		c.contexts += int64(len(touches))
	}
	var c *statsCount
	for i := range touches {
		// A delivery's clicks are mostly of one business: one lookup.
		if b := touches[i].Key.BusinessID; i == 0 || b != touches[i-1].Key.BusinessID {
			c = s.bucket(statsBucket{business: b, unit: hour})
		}
		if c != nil {
			c.contexts++
		}
	}
}

// bucket returns b's count, adding it unless maxStatsBuckets are held
// (then nil, and the drop is counted). Called with mu held.
func (s *stats) bucket(b statsBucket) *statsCount {
	if c := s.pending[b]; c != nil {
		return c
	}
	if len(s.pending) >= maxStatsBuckets {
		s.dropped.Inc()
		return nil
	}
	// The id may point into a pooled request body: keep a copy.
	b.business = strings.Clone(b.business)
	c := &statsCount{}
	s.pending[b] = c
	return c
}

// run flushes every s.every until ctx is done, then once more:
// Serve stops it after the last request was answered, so that what was
// counted is written.
func (s *stats) run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statsFlushTimeout)
			s.flush(fctx)
			cancel()
			return
		case <-t.C:
			// Not cut short by the shutdown: what it takes is written
			// now or put back for the last flush.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statsFlushTimeout)
			s.flush(fctx)
			cancel()
		}
	}
}

// queuedCount is a bucket's commands in a flush.
type queuedCount struct {
	b                  statsBucket
	c                  *statsCount
	webhooks, contexts *redis.IntCmd
	expire             *redis.BoolCmd
}

// flush writes the counts in one pipelined round trip: per hash its
// HINCRBYs and one EXPIRE (trail.StatsTTL after the last increment, as
// the sender's counters). A pipeline rather than MULTI, because the
// hashes are on different slots of a Redis Cluster (go-redis sends each
// node its share), and the embedded store serves both commands. What a
// failed flush did not get through is kept for the next one; it returns
// the flush's error, which it logs at most once a minute.
func (s *stats) flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	taken := s.pending
	if len(taken) == 0 {
		s.mu.Unlock()
		return nil
	}
	s.pending = make(map[statsBucket]*statsCount, len(taken))
	s.mu.Unlock()
	// Asked once, here and not on the hot path: a store without hashes (an
	// embedded store of an older build) would refuse every HINCRBY.
	s.asked.Do(func() {
		if !trail.CanCount(ctx, s.rdb) {
			s.off.Store(true)
			s.log.Warn("the store keeps no hashes: webhook and click statistics are off")
		}
	})
	if s.off.Load() {
		return nil
	}
	queued := make([]queuedCount, 0, len(taken))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for b, c := range taken {
			q := queuedCount{b: b, c: c}
			key := b.key()
			if c.webhooks != 0 {
				q.webhooks = p.HIncrBy(ctx, key, trail.FieldWebhooks, c.webhooks)
			}
			if c.contexts != 0 {
				q.contexts = p.HIncrBy(ctx, key, trail.FieldContexts, c.contexts)
			}
			q.expire = p.Expire(ctx, key, trail.StatsTTL)
			queued = append(queued, q)
		}
		return nil
	})
	s.keepFailed(queued, err)
	return err
}

// keepFailed puts back what a flush did not write and logs a failure, the
// first of a run of them and then at most once a minute. A command whose
// reply was lost (a timeout after Redis ran it) is sent again too: the
// counts are statistics, and counting such a rare one twice is better than
// losing every count of an outage.
func (s *stats) keepFailed(queued []queuedCount, err error) {
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		if s.failing {
			s.failing = false
			s.log.Info("statistics written again")
		}
		return
	}
	for _, q := range queued {
		if now.Sub(q.b.start()) > trail.StatsTTL {
			continue // past every reader's window
		}
		var back statsCount
		if failed(q.webhooks) {
			back.webhooks = q.c.webhooks
		}
		if failed(q.contexts) {
			back.contexts = q.c.contexts
		}
		back.expire = q.expire.Err() != nil
		if back == (statsCount{}) {
			continue
		}
		if c := s.bucket(q.b); c != nil {
			c.webhooks += back.webhooks
			c.contexts += back.contexts
			c.expire = c.expire || back.expire
		}
	}
	if !s.failing || now.Sub(s.warned) >= time.Minute {
		s.failing, s.warned = true, now
		s.log.Warn("statistics not written; kept for the next flush (logged at most once a minute)",
			zap.Int("buckets", len(s.pending)), zap.Error(err))
	}
}

func failed(c *redis.IntCmd) bool { return c != nil && c.Err() != nil }
