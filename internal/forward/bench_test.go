package forward

import (
	"testing"
)

// BenchmarkEnqueue measures the one synchronous step forwarding adds to a
// webhook: a JetStream publish of the body, acknowledged after the file
// store has it. Parallel runs many at once, as ingest's handlers do. Each
// body differs (else the duplicate window would drop them).
//
//	flock /tmp/cpu.lock go test -run '^$' -bench Enqueue -benchtime 20000x ./internal/forward/
func BenchmarkEnqueue(b *testing.B) {
	for _, bc := range []struct {
		name     string
		parallel bool
	}{{"serial", false}, {"parallel", true}} {
		b.Run(bc.name, func(b *testing.B) {
			_, js := runJetStream(b)
			e := newEnqueuer(b, js, testConfig(DefaultMaxAge, "http://127.0.0.1:1/"))
			bodies := bodiesN(b, 0, b.N)
			headers := make([]map[string][]string, b.N)
			for i, body := range bodies {
				headers[i] = metaHeader(body)
			}
			ctx := b.Context()
			b.SetBytes(int64(len(bodies[0])))
			b.ReportAllocs()
			b.ResetTimer()
			if !bc.parallel {
				for i := range b.N {
					if err := e.Enqueue(ctx, bodies[i], headers[i]); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			var next atomicCounter
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.add()
					if err := e.Enqueue(ctx, bodies[i], headers[i]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
