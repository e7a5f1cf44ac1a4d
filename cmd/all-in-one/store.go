package main

import (
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/embedstore"
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

// openStore opens the embedded store of dataDir.
func openStore(dataDir string) (*embedstore.Store, error) {
	return embedstore.Open(embedstore.Options{
		Dir:    filepath.Join(dataDir, storeDir),
		Legacy: filepath.Join(dataDir, legacyJournal),
	})
}

// storeClient is the services' client of the embedded store: a plain
// go-redis client of its local port, as with redis-server.
func storeClient(st *embedstore.Store) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: st.Addr()})
}

// storeCollector exports the embedded store's size.
type storeCollector struct {
	st                                         *embedstore.Store
	keys, bytes, journal, snap, expired, syncs *prometheus.Desc
}

func newStoreCollector(st *embedstore.Store) storeCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return storeCollector{st: st,
		keys:    d("embedded_store_keys", "Keys in the embedded store (including expired ones the sweep has not reached)."),
		bytes:   d("embedded_store_bytes", "Bytes of the keys and values in the embedded store."),
		journal: d("embedded_store_journal_bytes", "Bytes of journal written since the last snapshot."),
		snap:    d("embedded_store_snapshot_bytes", "Bytes of the embedded store's last snapshot."),
		expired: d("embedded_store_expired_keys_total", "Keys the embedded store removed at their deadline since start."),
		syncs:   d("embedded_store_sync_seconds", "How long each journal write and sync took: every acknowledged write waits for one."),
	}
}

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.keys, c.bytes, c.journal, c.snap, c.expired, c.syncs} {
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
	buckets := map[float64]uint64{}
	n := uint64(0)
	for i, le := range embedstore.SyncBounds {
		n += s.Syncs.Counts[i]
		buckets[le] = n
	}
	n += s.Syncs.Counts[len(embedstore.SyncBounds)]
	ch <- prometheus.MustNewConstHistogram(c.syncs, n, s.Syncs.Sum, buckets)
}
