package forward

import "github.com/prometheus/client_golang/prometheus"

// Outcomes of forward_deliveries_total. A body ends in delivered or dead
// once per destination; retried counts each failed attempt before that.
const (
	outcomeDelivered = "delivered"
	outcomeRetried   = "retried"
	outcomeDead      = "dead"
)

// metrics are labelled by destination host only (never path or query,
// which may hold a token): one series per configured URL, so bounded.
type metrics struct {
	deliveries *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	pending    *prometheus.GaugeVec
	lag        *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, dests []*dest) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "forward_deliveries_total",
			Help: "Forwarding attempts by destination host and outcome: delivered (2xx), retried (failed, tried again later), dead (undelivered after FORWARD_MAX_AGE, now on dlq.forward).",
		}, []string{"host", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "forward_delivery_seconds",
			Help:    "Time from a body's enqueue (or redrive) to its delivery, by destination host.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 12), // 5 ms to ~6 h
		}, []string{"host"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "forward_pending",
			Help: "Bodies not yet delivered to a destination (waiting, in flight or backing off), by host.",
		}, []string{"host"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "forward_lag_seconds",
			Help: "Age of the oldest body not yet delivered to a destination (an upper bound; 0 when none), by host.",
		}, []string{"host"}),
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.latency, m.pending, m.lag} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, d := range dests {
		for _, o := range []string{outcomeDelivered, outcomeRetried, outcomeDead} {
			m.deliveries.WithLabelValues(d.label, o)
		}
		m.pending.WithLabelValues(d.label)
		m.lag.WithLabelValues(d.label)
	}
	return m, nil
}
