package ingest

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// countScript adds ARGV[2k+1] to field ARGV[2k] of the counter hash KEYS[1]
// and keeps it trail.StatsTTL (ARGV[1], seconds): one command per hash, so
// that the counters ride on the context write as one more command, not
// two or three (HINCRBY, HINCRBY, EXPIRE).
var countScript = `
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i+1])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
`

type deliveriesKey struct{}

// withDeliveries says how many webhook deliveries a context write carries
// (the coalescer merges several).
func withDeliveries(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, deliveriesKey{}, n)
}

// statsHook is the Store's record hook: it counts the webhook deliveries
// and the contexts (ad clicks) a write stores, in the minute's counters
// of GET /v1/stats and each business's hour (internal/trail), in the same
// round trip as the write. A store without hashes (an embedded store of
// an older build) gets none.
type statsHook struct {
	rdb  redis.UniversalClient
	once sync.Once
	on   atomic.Bool
}

func (h *statsHook) record(ctx context.Context, p redis.Pipeliner, touches []attribution.Touch) {
	// Asked once, on the first write (a round trip of its own, once per
	// process): whether the store keeps hashes (trail.CanCount).
	h.once.Do(func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		h.on.Store(trail.CanCount(cctx, h.rdb))
	})
	if !h.on.Load() {
		return
	}
	n, _ := ctx.Value(deliveriesKey{}).(int)
	n = max(n, 1)
	now := time.Now()
	ttl := strconv.Itoa(int(trail.StatsTTL / time.Second))
	p.Eval(ctx, countScript, []string{trail.MinuteKey(now)}, ttl, trail.FieldWebhooks, n, trail.FieldContexts, len(touches))
	per := map[string]int{}
	for i := range touches {
		per[touches[i].Key.BusinessID]++
	}
	for b, k := range per {
		p.Eval(ctx, countScript, []string{trail.BusinessKey(b, now)}, ttl, trail.FieldContexts, k)
	}
}
