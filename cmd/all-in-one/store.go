package main

import (
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/embedstore"
	"github.com/ctmpipe/ctmpipe/internal/ingest"
)

// The embedded store (internal/embedstore, docs/embedded-store.md) keeps
// its snapshot and journal in DATA_DIR/store. Every write is fsynced
// before its reply, so ingest's "200 only after the context is durably
// written" and the sender's ledger hold across a crash. Earlier versions
// kept a JSON journal in DATA_DIR/redis.journal: it is imported on the
// first start and removed once a snapshot holds it.
const (
	storeDir      = "store"
	legacyJournal = "redis.journal"
)

// openStore opens the embedded store of dataDir, which requires password
// (DATA_DIR/credentials.json) and stops a script at budget.
func openStore(dataDir, password string, budget time.Duration) (*embedstore.Store, error) {
	return embedstore.Open(embedstore.Options{
		Dir:          filepath.Join(dataDir, storeDir),
		Legacy:       filepath.Join(dataDir, legacyJournal),
		Password:     password,
		ScriptBudget: budget,
	})
}

// Timeouts of the services' client of the embedded store for calls
// without a deadline of their own. go-redis's defaults ignore the
// caller's deadline: with a 3 s read timeout and 3 retries, a webhook
// waited past RESPONSE_DEADLINE (5 s against 4) when the store was slow.
const (
	storeDialTimeout = 2 * time.Second
	storeIOTimeout   = ingest.DefaultStoreTimeout
)

// storeClient is the services' client of the embedded store: a go-redis
// client of its local port, as with redis-server, that logs in with the
// store's password and ends a call at its context's deadline
// (ContextTimeoutEnabled: ingest gives each write what is left of
// RESPONSE_DEADLINE). RESP2: the store speaks no other.
func storeClient(st *embedstore.Store, password string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: st.Addr(), Password: password, Protocol: 2,
		ContextTimeoutEnabled: true,
		DialTimeout:           storeDialTimeout, ReadTimeout: storeIOTimeout, WriteTimeout: storeIOTimeout,
		DialerRetries: 1, MaxRetries: 1,
	})
}

// storeCollector exports the embedded store's size.
type storeCollector struct {
	st                                         *embedstore.Store
	keys, bytes, journal, snap, expired, syncs *prometheus.Desc
	scriptRunning, scriptsStopped              *prometheus.Desc
}

func newStoreCollector(st *embedstore.Store) storeCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return storeCollector{st: st,
		keys:          d("embedded_store_keys", "Keys in the embedded store (including expired ones the sweep has not reached)."),
		bytes:         d("embedded_store_bytes", "Bytes of the keys and values in the embedded store."),
		journal:       d("embedded_store_journal_bytes", "Bytes of journal written since the last snapshot."),
		snap:          d("embedded_store_snapshot_bytes", "Bytes of the embedded store's last snapshot."),
		expired:       d("embedded_store_expired_keys_total", "Keys the embedded store removed at their deadline since start."),
		syncs:         d("embedded_store_sync_seconds", "How long each journal write and sync took: every acknowledged write waits for one."),
		scriptRunning: d("embedded_store_script_running", "1 while a Lua script holds the embedded store (every other command waits)."),
		scriptsStopped: d("embedded_store_scripts_stopped_total",
			"Lua scripts stopped at STORE_SCRIPT_BUDGET or by SCRIPT KILL; each answered an error and kept the writes it made before."),
	}
}

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.keys, c.bytes, c.journal, c.snap, c.expired, c.syncs, c.scriptRunning, c.scriptsStopped} {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.st.Stats()
	ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(s.Keys))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(c.journal, prometheus.GaugeValue, float64(s.JournalBytes))
	ch <- prometheus.MustNewConstMetric(c.snap, prometheus.GaugeValue, float64(s.SnapshotBytes))
	ch <- prometheus.MustNewConstMetric(c.expired, prometheus.CounterValue, float64(s.Expired))
	running := 0.0
	if s.ScriptRunning {
		running = 1
	}
	ch <- prometheus.MustNewConstMetric(c.scriptRunning, prometheus.GaugeValue, running)
	ch <- prometheus.MustNewConstMetric(c.scriptsStopped, prometheus.CounterValue, float64(s.ScriptsStopped))
	buckets := map[float64]uint64{}
	n := uint64(0)
	for i, le := range embedstore.SyncBounds {
		n += s.Syncs.Counts[i]
		buckets[le] = n
	}
	n += s.Syncs.Counts[len(embedstore.SyncBounds)]
	ch <- prometheus.MustNewConstHistogram(c.syncs, n, s.Syncs.Sum, buckets)
}
