package trail

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Counter fields. The minute hash ctm:stats:m:<unix minute> holds every
// field for all businesses; the hour hash ctm:stats:b:{<business>}:<unix
// hour> holds a business's conversions, contexts, sent and dead letters.
const (
	FieldWebhooks    = "webhooks"    // webhook deliveries ingest accepted
	FieldContexts    = "contexts"    // ad-click contexts stored (clicks)
	FieldConversions = "conversions" // conversions the sender took in (first delivery)
	FieldRequests    = "requests"    // Conversions API requests Meta accepted: calls against its rate limits
	// Outcomes: sent, duplicate, waiting_context, retry, parked, and
	// dead_letter:<reason>.
	FieldSent           = "sent"
	FieldDuplicate      = "duplicate"
	FieldWaitingContext = "waiting_context"
	FieldRetry          = "retry"
	FieldParked         = "parked"
	FieldDeadLetter     = "dead_letter:" // + reason
	fieldLatency        = "lat:"         // + bucket's upper bound in ms, or "inf"
)

// statsTTL keeps counters for the 24 h window and a margin.
const statsTTL = 26 * time.Hour

// latencyBounds are the upper bounds (ms) of the Graph latency buckets.
var latencyBounds = []int{25, 50, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 20000, 60000}

func latencyField(d time.Duration) string {
	ms := int(d.Milliseconds())
	for _, b := range latencyBounds {
		if ms <= b {
			return fieldLatency + strconv.Itoa(b)
		}
	}
	return fieldLatency + "inf"
}

// MinuteKey is the key of the counters of at's minute (ingest writes its
// fields there too).
func MinuteKey(at time.Time) string { return minuteKey(at) }

func minuteKey(at time.Time) string { return "ctm:stats:m:" + strconv.FormatInt(at.Unix()/60, 10) }

// BusinessKey is the key of business's counters of at's hour.
func BusinessKey(business string, at time.Time) string { return businessKey(business, at) }

func businessKey(business string, at time.Time) string {
	return "ctm:stats:b:{" + business + "}:" + strconv.FormatInt(at.Unix()/3600, 10)
}

func lastAcceptedKey(business string) string { return "ctm:stats:b:{" + business + "}:last_accepted" }

// StatsTTL is how long a counter key lives after its last increment.
const StatsTTL = statsTTL

// Stats is GET /v1/stats's answer.
type Stats struct {
	Window      string             `json:"window"`
	StepSeconds int                `json:"step_seconds"`
	Start       Time               `json:"start"`
	Series      map[string][]int64 `json:"series"`
	Outcomes    map[string]int64   `json:"outcomes"`
	// Requests is how many Conversions API requests Meta accepted in the
	// window: with Outcomes["sent"], the calls per 1,000 conversions.
	Requests       int64          `json:"requests"`
	GraphLatencyMS map[string]int `json:"graph_latency_ms"`
}

// SeriesFields are the counters Stats gives per step.
var SeriesFields = []string{"webhooks", "conversions", "sent", "dead_letters"}

// ReadStats reads the counters of the last window ("1h": per minute, "24h":
// per hour) ending at now.
func ReadStats(ctx context.Context, rdb redis.UniversalClient, window string, now time.Time) (Stats, error) {
	var steps, per int // steps of per minutes
	switch window {
	case "1h":
		steps, per = 60, 1
	case "24h":
		steps, per = 24, 60
	default:
		return Stats{}, errors.New("trail: window must be 1h or 24h")
	}
	// The last step ends with the current minute (or hour).
	end := now.Truncate(time.Duration(per) * time.Minute).Add(time.Duration(per) * time.Minute)
	start := end.Add(-time.Duration(steps*per) * time.Minute)
	n := steps * per
	cmds := make([]*redis.MapStringStringCmd, n)
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			cmds[i] = p.HGetAll(ctx, minuteKey(start.Add(time.Duration(i)*time.Minute)))
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return Stats{}, fmt.Errorf("trail: stats: %w", err)
	}
	st := Stats{Window: window, StepSeconds: per * 60, Start: At(start), Series: map[string][]int64{},
		Outcomes: map[string]int64{}, GraphLatencyMS: map[string]int{}}
	for _, f := range SeriesFields {
		st.Series[f] = make([]int64, steps)
	}
	lat := map[string]int64{}
	for i, c := range cmds {
		step := i / per
		for f, v := range c.Val() {
			x, _ := strconv.ParseInt(v, 10, 64)
			switch {
			case f == FieldWebhooks || f == FieldConversions || f == FieldSent:
				st.Series[f][step] += x
			case strings.HasPrefix(f, fieldLatency):
				lat[strings.TrimPrefix(f, fieldLatency)] += x
				continue
			case strings.HasPrefix(f, FieldDeadLetter):
				st.Series["dead_letters"][step] += x
			case f == FieldRequests:
				st.Requests += x
			}
			if isOutcome(f) {
				st.Outcomes[f] += x
			}
		}
	}
	if p50, p99, ok := percentiles(lat); ok {
		st.GraphLatencyMS["p50"], st.GraphLatencyMS["p99"] = p50, p99
	}
	return st, nil
}

func isOutcome(f string) bool {
	switch f {
	case FieldSent, FieldDuplicate, FieldWaitingContext, FieldRetry, FieldParked:
		return true
	}
	return strings.HasPrefix(f, FieldDeadLetter)
}

// percentiles are the upper bounds of the buckets holding the 50th and
// 99th percentile of the counted latencies.
func percentiles(lat map[string]int64) (p50, p99 int, ok bool) {
	type bucket struct {
		le int
		n  int64
	}
	var bs []bucket
	var total int64
	for k, n := range lat {
		le, err := strconv.Atoi(k)
		if err != nil {
			le = 2 * latencyBounds[len(latencyBounds)-1] // "inf": above the last bound
		}
		bs = append(bs, bucket{le, n})
		total += n
	}
	if total == 0 {
		return 0, 0, false
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	var cum int64
	p50, p99 = -1, -1
	for _, b := range bs {
		cum += b.n
		if p50 < 0 && cum*100 >= total*50 {
			p50 = b.le
		}
		if p99 < 0 && cum*100 >= total*99 {
			p99 = b.le
		}
	}
	return p50, p99, true
}

// Business is a business's counters of the last 24 h.
type Business struct {
	LastAccepted *time.Time
	Sent         int64
	Conversions  int64
	Contexts     int64
	Requests     int64            // Conversions API requests Meta accepted
	DeadLetters  map[string]int64 // by reason
}

// ReadBusiness reads the counters of the last 24 h (the current hour and
// the 23 before) ending at now of the businesses ids, added up, in one
// round trip; LastAccepted is the latest of theirs.
func ReadBusiness(ctx context.Context, rdb redis.UniversalClient, now time.Time, ids ...string) (Business, error) {
	b := Business{DeadLetters: map[string]int64{}}
	hours := make([]*redis.MapStringStringCmd, 0, 24*len(ids))
	lasts := make([]*redis.StringCmd, 0, len(ids))
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			for i := range 24 {
				hours = append(hours, p.HGetAll(ctx, businessKey(id, now.Add(-time.Duration(i)*time.Hour))))
			}
			lasts = append(lasts, p.Get(ctx, lastAcceptedKey(id)))
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return b, fmt.Errorf("trail: business stats: %w", err)
	}
	for _, h := range hours {
		for f, v := range h.Val() {
			x, _ := strconv.ParseInt(v, 10, 64)
			switch {
			case f == FieldSent:
				b.Sent += x
			case f == FieldConversions:
				b.Conversions += x
			case f == FieldContexts:
				b.Contexts += x
			case f == FieldRequests:
				b.Requests += x
			case strings.HasPrefix(f, FieldDeadLetter):
				b.DeadLetters[strings.TrimPrefix(f, FieldDeadLetter)] += x
			}
		}
	}
	for _, last := range lasts {
		if ms, err := last.Int64(); err == nil && (b.LastAccepted == nil || time.UnixMilli(ms).After(*b.LastAccepted)) {
			t := time.UnixMilli(ms).UTC()
			b.LastAccepted = &t
		}
	}
	return b, nil
}
