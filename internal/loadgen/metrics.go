package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// ScrapeSums fetches a Prometheus text exposition from url and returns the
// value of every sample named in names (label-less series: histogram _sum
// and _count, counters).
func ScrapeSums(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape: %s", resp.Status)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !want[name] {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// The ingest histograms that say how well store writes are shared.
const (
	batchSum   = "ingest_store_batch_requests_sum"
	batchCount = "ingest_store_batch_requests_count"
)

// storeBatching returns webhooks per store write between two scrapes, 0 when
// unknown.
func storeBatching(before, after map[string]float64) float64 {
	writes := after[batchCount] - before[batchCount]
	if before == nil || after == nil || writes <= 0 {
		return 0
	}
	return (after[batchSum] - before[batchSum]) / writes
}
