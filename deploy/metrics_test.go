package deploy_test

import (
	"context"
	"maps"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/buildinfo"
	"github.com/ctmpipe/ctmpipe/internal/ingest"
	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/services"
	"github.com/ctmpipe/ctmpipe/internal/startup"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// recorder is a Registerer that keeps every collector registered on it, so
// that the names of vectors without a series yet (no dead letter, no Graph
// error so far) are known too: a scrape would not show them.
type recorder struct {
	prometheus.Registerer
	mu         sync.Mutex
	collectors []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	r.mu.Lock()
	r.collectors = append(r.collectors, c)
	r.mu.Unlock()
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var (
	fqName     = regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)
	varLabels  = regexp.MustCompile(`variableLabels: \{([^}]*)\}\}$`)
	constLabel = regexp.MustCompile(`constLabels: \{([^}]*)\}`)
)

// metrics are metric names, each with its label names.
type metrics map[string]map[string]bool

// names are the metric names of every collector registered, with the
// series names Prometheus derives from histograms and summaries, and each
// one's labels (le on every _bucket series, quantile on every name).
func (r *recorder) names() metrics {
	out := metrics{}
	ch := make(chan *prometheus.Desc)
	go func() {
		for _, c := range r.collectors {
			c.Describe(ch)
		}
		close(ch)
	}()
	for d := range ch {
		s := d.String()
		m := fqName.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		labels := map[string]bool{"job": true, "instance": true}
		if v := varLabels.FindStringSubmatch(s); v != nil {
			for _, l := range strings.Split(v[1], ",") {
				if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
					labels[l] = true
				}
			}
		}
		if c := constLabel.FindStringSubmatch(s); c != nil {
			for _, kv := range strings.Split(c[1], ",") {
				if k, _, ok := strings.Cut(kv, "="); ok {
					labels[k] = true
				}
			}
		}
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			ls := maps.Clone(labels)
			if suffix == "_bucket" {
				ls["le"] = true
			}
			out[m[1]+suffix] = ls
		}
	}
	return out
}

// metricNames builds ingest's and the sender's metrics the way cmd/ingest
// and cmd/sender do, with every optional part on (capture, the intake,
// forwarding, automatic events), and returns every name they export. No
// request is served: registering is all it takes.
func metricNames(t *testing.T) metrics {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	srv := natstest.RunJetStream(t)
	nc := srv.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	log := zap.NewNop()
	rec := &recorder{Registerer: prometheus.NewRegistry()}
	rec.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := buildinfo.Register(rec); err != nil {
		t.Fatal(err)
	}
	if err := startup.RegisterReady(rec, startup.Checks{"redis": func(context.Context) error { return nil }}); err != nil {
		t.Fatal(err)
	}

	env := mapEnv(map[string]string{
		"REDIS_URL": "redis://" + mr.Addr(), "NATS_URL": srv.ClientURL(),
		"META_APP_SECRET": placeholder, "META_VERIFY_TOKEN": placeholder, "ADMIN_TOKEN": placeholder,
		"INTAKE_TOKEN": placeholder, "FORWARD_URLS": "https://inbox.example.com/webhook", "AUTOMATIC_EVENTS": "on",
		"CAPTURE": "on", "REGISTRY_KEY": "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "CAPI_ACCESS_TOKEN": placeholder,
	})
	icfg, svcCfg, err := services.ParseIngest(nil, env)
	if err != nil {
		t.Fatalf("ingest config: %v", err)
	}
	store := attribution.NewStore(rdb, icfg.ContextTTL)
	capture, err := ingest.NewCapture(nc, icfg, log, rec)
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	svc, err := services.New(svcCfg, services.Deps{Log: log, NATS: nc, Redis: rdb, Registerer: rec,
		Resumer: sender.Resumer{Redis: rdb, JS: js}})
	if err != nil {
		t.Fatalf("ingest services: %v", err)
	}
	deps := ingest.Deps{Logger: log, Store: store, Registerer: rec, Capture: capture}
	deps.Forward, deps.AutoEvents, deps.Policies = svc.Enqueuer(), svc.AutoPublisher(), svc.Policies()
	if _, err := ingest.New(icfg, deps); err != nil {
		t.Fatalf("ingest: %v", err)
	}

	scfg, err := sender.ParseConfig(nil, env)
	if err != nil {
		t.Fatalf("sender config: %v", err)
	}
	if _, err := sender.New(scfg, sender.Deps{Log: log, JS: js, Store: store, Redis: rdb, Registerer: rec}); err != nil {
		t.Fatalf("sender: %v", err)
	}
	names := rec.names()
	// What Prometheus itself adds to every target.
	for _, n := range []string{"up", "scrape_duration_seconds"} {
		names[n] = map[string]bool{"job": true, "instance": true}
	}
	return names
}

// TestMetricNames guards metricNames itself: names from each part.
func TestMetricNames(t *testing.T) {
	names := metricNames(t)
	for _, want := range []string{"ingest_webhooks_total", "ingest_signature_failures_total", "sender_conversions_total",
		"sender_graph_errors_total", "sender_graph_version_warnings_total", "forward_deliveries_total", "intake_requests_total",
		"automatic_events_total", "ingest_capture_total", "build_info", "ctmpipe_dependency_ready", "sender_graph_request_duration_seconds_bucket"} {
		if names[want] == nil {
			list := make([]string, 0, len(names))
			for n := range names {
				list = append(list, n)
			}
			sort.Strings(list)
			t.Fatalf("no %s among the metrics built: %v", want, list)
		}
	}
	if l := names["sender_conversions_total"]; !l["outcome"] || !l["channel"] || l["code"] {
		t.Errorf("sender_conversions_total labels = %v; want outcome, channel (and job, instance)", l)
	}
}
