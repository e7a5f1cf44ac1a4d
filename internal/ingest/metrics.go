package ingest

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// channel indexes the channel label. Labels carry channel and outcome only,
// never ids, so their cardinality is fixed.
type channel int

const (
	chanUnknown channel = iota
	chanWhatsApp
	chanMessenger
	chanInstagram
	chanOnPrem
	numChannels
)

func (c channel) String() string {
	switch c {
	case chanWhatsApp:
		return "whatsapp"
	case chanMessenger:
		return "messenger"
	case chanInstagram:
		return "instagram"
	case chanOnPrem:
		return "onprem"
	}
	return "unknown"
}

// outcome indexes the outcome label of ingest_webhooks_total.
type outcome int

const (
	outStored outcome = iota
	outIgnored
	outMalformed
	outBadSignature
	outBadJSON
	outTooLarge
	outStoreError
	outUnauthorized
	outOverloaded
	outDeadline
	outQueueError
	numOutcomes
)

func (o outcome) String() string {
	return [numOutcomes]string{"stored", "ignored", "malformed", "bad_signature", "bad_json", "too_large", "store_error", "unauthorized", "overloaded", "deadline", "queue_error"}[o]
}

// Routes timed by ingest_http_request_duration_seconds.
const (
	routeWebhook = iota
	routeOnPrem
	routeHandshake
	routeContexts
	numRoutes
)

func routeName(r int) string {
	return [numRoutes]string{"webhook", "webhook_onprem", "webhook_handshake", "contexts"}[r]
}

// metrics holds the service's collectors with every label combination
// resolved up front, so the hot path does no label lookups.
type metrics struct {
	webhooks      [numChannels][numOutcomes]prometheus.Counter
	touches       [numChannels]prometheus.Counter
	sigFailures   prometheus.Counter
	storeDuration prometheus.Observer
	batchSize     prometheus.Observer
	reqDuration   [numRoutes]prometheus.Observer
	deadline      prometheus.Counter
	statsDropped  prometheus.Counter
	connsClosed   *prometheus.CounterVec // by reason (conns.go)
}

// gauges read the state the limits of body.go keep, at scrape time.
type gauges struct {
	bodyBytes, bodies, conns func() float64
}

func newMetrics(reg prometheus.Registerer, g gauges) (*metrics, error) {
	webhooks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ingest_webhooks_total",
		Help: "Webhook deliveries by channel and outcome (stored, ignored, malformed, bad_signature, bad_json, too_large, store_error, unauthorized, overloaded, deadline).",
	}, []string{"channel", "outcome"})
	touches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ingest_touches_total",
		Help: "Ad clicks written to the store, by channel.",
	}, []string{"channel"})
	sigFailures := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ingest_signature_failures_total",
		Help: "POST /webhook deliveries whose X-Hub-Signature-256 was missing or matched no app secret.",
	})
	storeDuration := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ingest_store_duration_seconds",
		Help:    "Time of one store write: one Redis round trip, shared by the webhooks of a batch.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	batchSize := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ingest_store_batch_requests",
		Help:    "Webhooks whose touches shared one store write (write coalescing under load).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
	})
	reqDuration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ingest_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route"})
	deadline := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ingest_deadline_exceeded_total",
		Help: "Requests answered 503 because RESPONSE_DEADLINE passed (body read, store queue and write included).",
	})
	statsDropped := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ingest_stats_dropped_total",
		Help: "Updates of the webhook and click statistics (GET /v1/stats, business health) dropped because Redis was away so long that the most minutes and business-hours ingest keeps in memory were held.",
	})
	bodyBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ingest_body_bytes_in_flight",
		Help: "Bytes the buffers of request bodies being read or handled hold, bounded by MAX_BODY_BYTES_IN_FLIGHT.",
	}, g.bodyBytes)
	bodies := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ingest_bodies_in_flight",
		Help: "Request bodies being read or handled.",
	}, g.bodies)
	conns := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ingest_connections_open",
		Help: "Connections open on the webhook listener, bounded by MAX_CONNECTIONS.",
	}, g.conns)
	connsClosed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ingest_connections_closed_total",
		Help: "Connections the webhook listener closed to keep its slots for requests, by reason (first_byte_timeout, per_address, idle_evicted).",
	}, []string{"reason"})
	for _, r := range []string{closedFirstByte, closedPerAddress, closedIdle} {
		connsClosed.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{webhooks, touches, sigFailures, storeDuration, batchSize, reqDuration, deadline, statsDropped, bodyBytes, bodies, conns, connsClosed} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ingest: register metrics: %w", err)
		}
	}
	m := &metrics{sigFailures: sigFailures, storeDuration: storeDuration, batchSize: batchSize, deadline: deadline, statsDropped: statsDropped, connsClosed: connsClosed}
	for c := range numChannels {
		m.touches[c] = touches.WithLabelValues(c.String())
		for o := range numOutcomes {
			m.webhooks[c][o] = webhooks.WithLabelValues(c.String(), o.String())
		}
	}
	for r := range numRoutes {
		m.reqDuration[r] = reqDuration.WithLabelValues(routeName(r))
	}
	return m, nil
}
