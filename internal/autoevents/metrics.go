package autoevents

import "github.com/prometheus/client_golang/prometheus"

// Results, the result label of automatic_events_total.
const (
	resultPublished = "published"
	resultDuplicate = "duplicate"
	resultInvalid   = "invalid"
	resultNoClick   = "no_click"
	resultDisabled  = "disabled"
)

// metrics are the automatic_events_* series. The one label is a result,
// never an id, so its cardinality is fixed.
type metrics struct {
	events *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "automatic_events_total",
		Help: "Automatic events (Meta-detected purchases and leads) in webhooks answered 200: published (stored in JetStream), duplicate (stored before, by event_id), invalid (broke the conversion contract), no_click (no ctwa_clid: an ad in WhatsApp Status) or disabled (the business is not opted in here).",
	}, []string{"result"})}
	if err := reg.Register(m.events); err != nil {
		return nil, err
	}
	for _, r := range []string{resultPublished, resultDuplicate, resultInvalid, resultNoClick, resultDisabled} {
		m.events.WithLabelValues(r)
	}
	return m, nil
}

func (m *metrics) add(r Result) {
	m.events.WithLabelValues(resultPublished).Add(float64(r.Published))
	m.events.WithLabelValues(resultDuplicate).Add(float64(r.Duplicates))
	m.events.WithLabelValues(resultNoClick).Add(float64(r.NoClick))
	m.events.WithLabelValues(resultInvalid).Add(float64(len(r.Invalid)))
	m.events.WithLabelValues(resultDisabled).Add(float64(r.Disabled))
}
