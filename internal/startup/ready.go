package startup

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Checks are a service's dependencies by name ("redis", "nats"), each with
// a cheap check that fails while it is not usable.
type Checks map[string]func(context.Context) error

// readyTimeout bounds one check at scrape time, under Prometheus's default
// scrape timeout of 10 s.
const readyTimeout = time.Second

var readyDesc = prometheus.NewDesc("ctmpipe_dependency_ready",
	"1 while the dependency answers (checked at each scrape, within 1 s), 0 while it does not: the store (redis) or NATS (nats).",
	[]string{"dependency"}, nil)

type readyCollector Checks

func (c readyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- readyDesc }

func (c readyCollector) Collect(ch chan<- prometheus.Metric) {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		v := 1.0
		if c[n](ctx) != nil {
			v = 0
		}
		cancel()
		ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, v, n)
	}
}

// RegisterReady adds ctmpipe_dependency_ready{dependency} to reg, so that an
// alert sees a store or NATS a running service cannot reach (its /readyz
// says so to the orchestrator, which Prometheus does not scrape).
// Registered twice on one registry (all-in-one), the first is kept.
func RegisterReady(reg prometheus.Registerer, checks Checks) error {
	err := reg.Register(readyCollector(checks))
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		return nil
	}
	return err
}

// NATSCheck fails while nc is not connected (reconnecting, closed): no
// round trip, the client's own state.
func NATSCheck(nc *nats.Conn) func(context.Context) error {
	return func(context.Context) error {
		if nc == nil || nc.Status() != nats.CONNECTED {
			return errors.New("nats not connected")
		}
		return nil
	}
}
