package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// StoreBench measures the all-in-one with its embedded store against the
// same binary on redis-server (REDIS_URL), one after the other, each from
// an empty store (issue 16): fill Contexts contexts; RSS; ingest WhatsApp
// deliveries of Batch clicks, Workers at a time, for Duration (the ingest
// rate); then single-click webhooks open loop at Rate a second for
// Duration while Expiring short-lived keys reach their deadline and a
// compaction (BGREWRITEAOF) runs (the latency); for the embedded store,
// the time from SIGKILL to ready again.
type StoreBench struct {
	Bin       string // the all-in-one binary
	RedisBin  string // redis-server
	Dir       string // scratch: data dirs
	Contexts  int
	Batch     int
	Workers   int
	Duration  time.Duration
	Expiring  int
	Rate      float64   // single-click webhooks a second in the latency window
	NoCompact bool      // skip the BGREWRITEAOF, to tell its cost from expiry's
	Log       io.Writer // progress lines
}

// StoreResult is what StoreBench measured for one store.
type StoreResult struct {
	Name       string
	FillRate   float64 // contexts/s recorded straight into the store while filling
	Rate       float64 // contexts/s stored through webhooks during the window
	Load       *Result // the ingest-rate window
	Latency    *Result // the open-loop window during expiry and compaction
	RSS        int64   // bytes: the all-in-one after the fill
	StoreRSS   int64   // bytes: redis-server after the fill (0: embedded)
	KeysBefore int64   // keys before the window (contexts and the expiring keys)
	KeysAfter  int64
	// Journal syncs in the latency window (embedded only): all, and those
	// over 50 ms and over 100 ms, from embedded_store_sync_seconds.
	Syncs, Syncs50, Syncs100 float64
	Restart                  time.Duration // SIGKILL to /readyz 200 (embedded only)
	KeysReload               int64         // keys after the restart
}

const storeBenchSecret = "loadgen-store-secret"

// Run measures the embedded store, then redis-server.
func (b *StoreBench) Run(ctx context.Context) (embedded, real *StoreResult, err error) {
	b.logf("signing deliveries of %d clicks", b.Batch)
	pool, err := b.deliveries()
	if err != nil {
		return nil, nil, err
	}
	mix, _ := ParseMix("whatsapp=1")
	single := NewPool(NewBodyGen(8), mix, []byte(storeBenchSecret), uint64(b.Contexts+b.Expiring)+1<<40,
		int(b.Rate*(b.Duration.Seconds()+2))+1, time.Now())
	if embedded, err = b.runOne(ctx, "embedded", pool, single); err != nil {
		return nil, nil, err
	}
	real, err = b.runOne(ctx, "redis-server", pool, single)
	return embedded, real, err
}

func (b *StoreBench) logf(format string, args ...any) {
	if b.Log != nil {
		fmt.Fprintf(b.Log, "store bench: "+format+"\n", args...)
	}
}

// deliveries signs WhatsApp webhooks of Batch clicks each, numbered after
// the fill's contexts, enough for the window at 60,000 contexts/s.
func (b *StoreBench) deliveries() (*Pool, error) {
	n := max(int(b.Duration.Seconds()+2)*60000/b.Batch, 10)
	g := NewBodyGen(8)
	now := time.Now()
	p := &Pool{items: make([]Signed, n)}
	seq := uint64(b.Contexts + b.Expiring + 1)
	for i := range p.items {
		var entries []json.RawMessage
		for range b.Batch {
			var one struct {
				Object string            `json:"object"`
				Entry  []json.RawMessage `json:"entry"`
			}
			if err := json.Unmarshal(g.Append(nil, "whatsapp", seq, now), &one); err != nil {
				return nil, fmt.Errorf("generated body: %w", err)
			}
			entries = append(entries, one.Entry...)
			seq++
		}
		body, _ := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": entries})
		p.items[i] = Signed{Channel: "whatsapp", Body: body, Signature: webhook.Sign(body, []byte(storeBenchSecret))}
	}
	return p, nil
}

func (b *StoreBench) runOne(ctx context.Context, name string, pool, single *Pool) (*StoreResult, error) {
	res := &StoreResult{Name: name}
	dataDir := filepath.Join(b.Dir, name)
	os.RemoveAll(dataDir)
	var redisURL string
	var srv *redisProc
	if name != "embedded" {
		var err error
		if srv, err = startRedisServer(b.RedisBin, filepath.Join(b.Dir, "redis-data")); err != nil {
			return nil, err
		}
		defer srv.stop()
		redisURL = "redis://" + srv.addr + "/0"
	}
	a, err := b.start(ctx, dataDir, redisURL)
	if err != nil {
		return nil, err
	}
	defer func() { a.stop() }()
	if err := a.waitReady(ctx); err != nil {
		return nil, err
	}
	addr, pass := a.storeAddr, a.storePass
	if srv != nil {
		addr, pass = srv.addr, ""
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, Password: pass})
	defer rdb.Close()

	b.logf("%s: filling %d contexts", name, b.Contexts)
	t0 := time.Now()
	if err := fill(ctx, rdb, b.Contexts); err != nil {
		return nil, fmt.Errorf("%s: fill: %w", name, err)
	}
	res.FillRate = float64(b.Contexts) / time.Since(t0).Seconds()
	res.RSS = rss(a.cmd.Process.Pid)
	if srv != nil {
		res.StoreRSS = rss(srv.cmd.Process.Pid)
	}
	e, err := ParseEndpoint(a.webhookURL)
	if err != nil {
		return nil, err
	}
	b.logf("%s: RSS %d MiB; ingesting deliveries of %d clicks for %v", name, res.RSS>>20, b.Batch, b.Duration)
	res.Load = b.window(ctx, name, e, pool, 0)
	res.Rate = res.Load.Throughput() * float64(b.Batch)

	// Short-lived keys (the ledger's and the sender's kind) that reach their
	// deadline in the next window, so that expiry runs while it is measured.
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range b.Expiring {
			p.Set(ctx, "ctm:ledger:{bench-"+strconv.Itoa(i)+"}", "s:1", 3*time.Second)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("%s: expiring keys: %w", name, err)
	}
	res.KeysBefore = rdb.DBSize(ctx).Val()
	if err := b.compact(ctx, rdb); err != nil {
		return nil, fmt.Errorf("%s: bgrewriteaof: %w", name, err)
	}
	b.logf("%s: %d keys; %.0f webhooks/s for %v during expiry and compaction", name, res.KeysBefore, b.Rate, b.Duration)
	metrics := strings.Replace(a.webhookURL, "/webhook", "/metrics", 1)
	before, _ := ScrapeSums(ctx, metrics, syncSeries...)
	res.Latency = b.window(ctx, name, e, single, b.Rate)
	if after, err := ScrapeSums(ctx, metrics, syncSeries...); err == nil && before != nil {
		d := func(k string) float64 { return after[k] - before[k] }
		res.Syncs = d(syncSeries[0])
		res.Syncs50 = res.Syncs - d(syncSeries[1])
		res.Syncs100 = res.Syncs - d(syncSeries[2])
	}
	res.KeysAfter = rdb.DBSize(ctx).Val()
	if srv != nil {
		return res, nil
	}
	b.logf("%s: SIGKILL and restart with %d keys", name, res.KeysAfter)
	a.kill()
	t0 = time.Now()
	if a, err = b.start(ctx, dataDir, ""); err != nil {
		return nil, err
	}
	if err := a.waitReady(ctx); err != nil {
		return nil, err
	}
	res.Restart = time.Since(t0)
	r2 := redis.NewClient(&redis.Options{Addr: a.storeAddr, Password: a.storePass})
	res.KeysReload = r2.DBSize(ctx).Val()
	r2.Close()
	return res, nil
}

func (b *StoreBench) compact(ctx context.Context, rdb *redis.Client) error {
	if b.NoCompact {
		return nil
	}
	return rdb.Do(ctx, "BGREWRITEAOF").Err()
}

// syncSeries are the embedded store's sync count and its buckets at 50
// and 100 ms.
var syncSeries = []string{"embedded_store_sync_seconds_count",
	`embedded_store_sync_seconds_bucket{le="0.05"}`, `embedded_store_sync_seconds_bucket{le="0.1"}`}

// window runs one measured window of p's requests (open loop at rate, or
// closed loop with Workers connections when rate is 0).
func (b *StoreBench) window(ctx context.Context, name string, e Endpoint, p *Pool, rate float64) *Result {
	p.Rewind()
	reqs := make([][]byte, p.Len())
	for i := range reqs {
		reqs[i] = BuildRequest(e, p.Item(i))
	}
	conns := b.Workers
	if rate > 0 {
		conns = 64 // enough that a slow answer does not hold back the schedule
	}
	l := &Load{Name: name, Endpoint: e, Pool: p, Conns: conns, Warmup: time.Second, Duration: b.Duration, Rate: rate, Timeout: 30 * time.Second}
	return l.Run(ctx, reqs)
}

// fill records n WhatsApp contexts straight into the store, as ingest
// would (the attribution store's script), 200 a call, 8 calls at a time.
func fill(ctx context.Context, rdb redis.UniversalClient, n int) error {
	store := attribution.NewStore(rdb, attribution.DefaultTTL)
	g := NewBodyGen(8)
	mix, _ := ParseMix("whatsapp=1")
	const chunk = 50000
	for off := 0; off < n; off += chunk {
		ts, err := Touches(g, mix, uint64(off), min(chunk, n-off), time.Now())
		if err != nil {
			return err
		}
		if err := RecordAll(ctx, store, ts, 200, 8); err != nil {
			return err
		}
	}
	return nil
}
