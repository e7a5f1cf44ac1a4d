package loadgen

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// TouchFromWebhook maps a parsed click to the store's Touch the way ingest
// does, so contexts recorded by the harness are the ones ingest would store.
func TouchFromWebhook(t *webhook.Touch) attribution.Touch {
	return attribution.Touch{
		Key:           attribution.Key{Channel: string(t.Channel), BusinessID: t.BusinessID, UserID: t.UserID},
		PhoneNumberID: t.PhoneNumberID,
		ClickID:       t.ClickID,
		AdID:          t.AdID,
		SourceType:    t.SourceType,
		SourceURL:     t.SourceURL,
		Ref:           t.Ref,
		Time:          time.Unix(t.Time, 0).UTC(),
	}
}

// Touches returns the touches the webhook bodies of sequence numbers
// first..first+n-1 carry, by generating and parsing each body: what is
// stored is exactly what ingest would store for the same traffic.
func Touches(g *BodyGen, mix Mix, first uint64, n int, now time.Time) ([]attribution.Touch, error) {
	out := make([]attribution.Touch, 0, n)
	buf := make([]byte, 0, 2048)
	for i := range n {
		seq := first + uint64(i)
		buf = g.Append(buf[:0], mix.Channel(seq), seq, now)
		p, err := webhook.Parse(buf)
		if err != nil || len(p.Touches) != 1 {
			return nil, fmt.Errorf("generated body %d parses to %d touches: %v", seq, len(p.Touches), err)
		}
		out = append(out, TouchFromWebhook(&p.Touches[0]))
	}
	return out, nil
}

// RecordAll records touches through store in batches of batch touches with
// workers concurrent calls (each call is one round trip).
func RecordAll(ctx context.Context, store *attribution.Store, touches []attribution.Touch, batch, workers int) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for i := 0; i < len(touches); i += batch {
		part := touches[i:min(i+batch, len(touches))]
		g.Go(func() error { return store.Record(ctx, part) })
	}
	return g.Wait()
}

// UsedMemory returns the server's used_memory (INFO memory), in bytes.
func UsedMemory(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("info memory: %w", err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("info memory: no used_memory")
}

// MemResult is what MeasureMemory found.
type MemResult struct {
	N             int
	Before, After int64 // used_memory
	Keys          int64 // DBSIZE after
}

// PerContext returns the used_memory growth per recorded context.
func (m MemResult) PerContext() float64 {
	if m.N == 0 {
		return 0
	}
	return float64(m.After-m.Before) / float64(m.N)
}

// MeasureMemory records n contexts with unique users (sequence numbers
// from first) into the Redis behind rdb and returns used_memory before and
// after. Touches are generated in chunks so that the harness's own memory
// stays small for n in the millions.
func MeasureMemory(ctx context.Context, rdb redis.UniversalClient, g *BodyGen, mix Mix, first uint64, n int) (MemResult, error) {
	store := attribution.NewStore(rdb, attribution.DefaultTTL)
	res := MemResult{N: n}
	var err error
	if res.Before, err = UsedMemory(ctx, rdb); err != nil {
		return res, err
	}
	const chunk = 50000
	for off := 0; off < n; off += chunk {
		ts, err := Touches(g, mix, first+uint64(off), min(chunk, n-off), time.Now())
		if err != nil {
			return res, err
		}
		if err := RecordAll(ctx, store, ts, 100, 8); err != nil {
			return res, fmt.Errorf("record: %w", err)
		}
	}
	if res.After, err = UsedMemory(ctx, rdb); err != nil {
		return res, err
	}
	if res.Keys, err = rdb.DBSize(ctx).Result(); err != nil {
		return res, fmt.Errorf("dbsize: %w", err)
	}
	return res, nil
}

// CommandStats returns the calls of each command Redis has served (INFO
// commandstats), keyed by command name.
func CommandStats(ctx context.Context, rdb redis.UniversalClient) (map[string]int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("info commandstats: %w", err)
	}
	return parseCommandStats(info), nil
}

// parseCommandStats reads "cmdstat_get:calls=3,usec=9,..." lines.
func parseCommandStats(info string) map[string]int64 {
	out := map[string]int64{}
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		cmd, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				out[cmd] = n
			}
		}
	}
	return out
}

// CommandsPer formats the growth of each command between before and after
// per unit of n, largest first, leaving out commands the harness itself
// sends (info) and those under 0.005 per unit.
func CommandsPer(before, after map[string]int64, n int) string {
	type kv struct {
		cmd string
		per float64
	}
	var all []kv
	var total float64
	for cmd, a := range after {
		if cmd == "info" || n == 0 {
			continue
		}
		per := float64(a-before[cmd]) / float64(n)
		total += per
		if per >= 0.005 {
			all = append(all, kv{cmd, per})
		}
	}
	slices.SortFunc(all, func(x, y kv) int { return cmp.Compare(y.per, x.per) })
	s := fmt.Sprintf("%.2f", total)
	for i, e := range all {
		if i == 0 {
			s += " ("
		} else {
			s += ", "
		}
		s += fmt.Sprintf("%s %.2f", e.cmd, e.per)
	}
	if len(all) > 0 {
		s += ")"
	}
	return s
}
