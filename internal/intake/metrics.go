package intake

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Conversion results, the result label of intake_conversions_total.
const (
	resultAccepted  = "accepted"
	resultDuplicate = "duplicate"
	resultInvalid   = "invalid"
)

// answeredCodes are the statuses the intake answers, pre-created so that a
// rate over them starts at zero rather than at the first such answer.
var answeredCodes = []int{
	http.StatusAccepted, http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound,
	http.StatusRequestEntityTooLarge, http.StatusInternalServerError, http.StatusServiceUnavailable,
}

// metrics are the intake_* series. Labels are status codes and results,
// never ids, so their cardinality is fixed.
type metrics struct {
	requests    *prometheus.CounterVec // code
	conversions *prometheus.CounterVec // result
	duration    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intake_requests_total",
			Help: "POST /v1/conversions requests by answered status code.",
		}, []string{"code"}),
		conversions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intake_conversions_total",
			Help: "Conversions received over HTTP: accepted (stored in JetStream), duplicate (stored before, by event_id) or invalid (broke the contract, named in the answer). Items of a request answered 503 are not counted.",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "intake_request_duration_seconds",
			Help:    "Time from a POST /v1/conversions request to its answer, JetStream acks included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.conversions, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, code := range answeredCodes {
		m.requests.WithLabelValues(strconv.Itoa(code))
	}
	for _, r := range []string{resultAccepted, resultDuplicate, resultInvalid} {
		m.conversions.WithLabelValues(r)
	}
	return m, nil
}
