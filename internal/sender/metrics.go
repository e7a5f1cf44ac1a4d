package sender

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// The outcomes of sender_conversions_total. Every message ends in exactly one
// final outcome (sent, duplicate, or a dead-letter reason); retried and
// paused count hand-backs, so a message may count in them several times
// before its final outcome. waiting_context counts conversions that had to
// wait for their ad-click context, once each (at their first wait); each
// wait, the first and every later look, counts in sender_context_waits_total.
const (
	outcomeSent           = "sent"
	outcomeDuplicate      = "duplicate"
	outcomeRetried        = "retried"
	outcomeWaitingContext = "waiting_context"
	outcomePaused         = "paused"
)

type metrics struct {
	conversions   *prometheus.CounterVec
	batchSize     prometheus.Histogram
	graphDuration prometheus.Histogram
	graphErrors   *prometheus.CounterVec
	pending       prometheus.Gauge
	ackPending    prometheus.Gauge
	maxAckPending prometheus.Gauge
	parked        prometheus.Gauge
	paused        prometheus.Gauge
	contextWaits  *prometheus.CounterVec
	// versionWarnings counts accepted requests that Meta answered as a
	// newer version than GRAPH_API_VERSION (X-Ad-Api-Version-Warning).
	versionWarnings prometheus.Counter
	// pipeline.go
	queued           prometheus.Gauge
	inflight         prometheus.Gauge
	inflightPeak     prometheus.Gauge
	eventsPerRequest prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		conversions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sender_conversions_total",
			Help: "Conversions handled, by outcome (sent, duplicate, a dead-letter reason; hand-backs retried and paused; waiting_context: conversions that waited for their context, once each) and channel.",
		}, []string{"outcome", "channel"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sender_batch_size",
			Help:    "Messages per fetched batch.",
			Buckets: []float64{1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000},
		}),
		graphDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sender_graph_request_duration_seconds",
			Help:    "Duration of Conversions API requests (one per batch of up to 1000 events).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
		graphErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sender_graph_errors_total",
			Help: "Failed Conversions API requests by Graph error code (http_<status> without one, transport without an answer).",
		}, []string{"code"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sender_consumer_pending",
			Help: "Messages of the CONVERSIONS consumer not yet delivered or not yet acked.",
		}),
		ackPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sender_consumer_ack_pending",
			Help: "Messages delivered and not yet acked: in flight, waiting for their context, backing off or paused. JetStream stops delivering at sender_consumer_max_ack_pending.",
		}),
		maxAckPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sender_consumer_max_ack_pending",
			Help: "MaxAckPending of the CONVERSIONS consumer.",
		}),
		parked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sender_parked_messages",
			Help: "Messages of paused businesses waiting in stream PARKED.",
		}),
		// One series, not one per business: which ones and why is in the
		// admin API (GET /v1/businesses/{id}: health.paused) and the console.
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sender_businesses_paused",
			Help: "Businesses this sender holds paused after a token or setup error (which ones: the admin API's business health).",
		}),
		contextWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sender_context_waits_total",
			Help: "Hand-backs of conversions whose ad-click context is not there yet: one per look (sender_conversions_total{outcome=\"waiting_context\"} counts the conversions).",
		}, []string{"channel"}),
		versionWarnings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sender_graph_version_warnings_total",
			Help: "Accepted Conversions API requests that Meta auto-upgraded from an expired GRAPH_API_VERSION (X-Ad-Api-Version-Warning): set a supported version.",
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sender_queued_events",
			Help: "Events waiting in the per-dataset queues for a request slot or to fill a request (LINGER).",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sender_requests_in_flight",
			Help: "Conversions API requests in flight (at most MAX_INFLIGHT).",
		}),
		inflightPeak: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sender_requests_in_flight_peak",
			Help: "The most Conversions API requests in flight at once since the sender started.",
		}),
		eventsPerRequest: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sender_events_per_request",
			Help:    "Events per Conversions API request (at most 1000).",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000},
		}),
	}
	for _, c := range []prometheus.Collector{m.conversions, m.batchSize, m.graphDuration, m.graphErrors, m.pending, m.ackPending, m.maxAckPending, m.parked, m.paused, m.contextWaits,
		m.versionWarnings, m.queued, m.inflight, m.inflightPeak, m.eventsPerRequest} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// count adds n conversions of channel (only the three known channels become
// label values, so bad input cannot grow the label set).
func (m *metrics) count(outcome, channel string, n int) {
	switch channel {
	case "whatsapp", "messenger", "instagram":
	default:
		channel = "unknown"
	}
	m.conversions.WithLabelValues(outcome, channel).Add(float64(n))
}

// channelLabel is channel as a label value (the three known, else unknown).
func channelLabel(channel string) string {
	switch channel {
	case "whatsapp", "messenger", "instagram":
		return channel
	}
	return "unknown"
}

// pausedCount is how many businesses this sender holds paused.
func (bs *businesses) pausedCount() int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	n := 0
	for _, b := range bs.m {
		b.mu.Lock()
		if b.paused {
			n++
		}
		b.mu.Unlock()
	}
	return n
}

func graphErrorCode(code, status int) string {
	if code != 0 {
		return strconv.Itoa(code)
	}
	return "http_" + strconv.Itoa(status)
}
