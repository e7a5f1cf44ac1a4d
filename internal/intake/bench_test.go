package intake

import (
	"fmt"
	"net/http"
	"testing"
)

// BenchmarkNDJSON1000 posts bodies of 1,000 new conversions over HTTP to an
// in-process JetStream (file storage) and reports conversions per second:
// what one client gets from the intake, acks included.
func BenchmarkNDJSON1000(b *testing.B) {
	e := newEnv(b, Config{}, false)
	n := 0
	for b.Loop() {
		body := ndjson(conversions(fmt.Sprintf("bench%d", n), MaxItems))
		n++
		if r := e.post(body, "application/x-ndjson"); r.Status != http.StatusAccepted || r.Accepted != MaxItems {
			b.Fatalf("POST = %d %s", r.Status, r.Raw)
		}
	}
	b.ReportMetric(float64(n*MaxItems)/b.Elapsed().Seconds(), "conversions/s")
}
