package ledger_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/pkg/ledger"
)

// benchClaims claims batches of 1000 new ids with claim (Claim's SET NX, or
// TakeOver's Lua script, which is what a script-based Claim would cost).
func benchClaims(b *testing.B, takeover bool) {
	srv := redistest.Start(b)
	l := ledger.New(srv.Client(b), time.Hour)
	ids := make([]string, 1000)
	n := 0
	for b.Loop() {
		nextIDs(ids, &n)
		var err error
		if takeover {
			_, err = l.TakeOver(b.Context(), "o", time.Minute, ids)
		} else {
			_, err = l.Claim(b.Context(), "o", time.Minute, ids)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "µs/id")
}

func BenchmarkClaim1000(b *testing.B)    { benchClaims(b, false) }
func BenchmarkTakeOver1000(b *testing.B) { benchClaims(b, true) }

// BenchmarkMarkSent1000 marks batches of 1000 claimed ids sent.
func BenchmarkMarkSent1000(b *testing.B) {
	srv := redistest.Start(b)
	l := ledger.New(srv.Client(b), time.Hour)
	ids := make([]string, 1000)
	n := 0
	for b.Loop() {
		nextIDs(ids, &n)
		if err := l.MarkSent(b.Context(), ids); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "µs/id")
}

// nextIDs fills ids with ids never used before (*n counts them).
func nextIDs(ids []string, n *int) {
	for i := range ids {
		ids[i] = "b/e" + strconv.Itoa(*n)
		*n++
	}
}
