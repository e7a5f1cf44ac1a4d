package tracing

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
)

// BenchmarkOff is what a published message and a Graph request pay with
// tracing off: the Enabled check and an Inject that finds no span.
func BenchmarkOff(b *testing.B) {
	ctx := context.Background()
	m := nats.NewMsg("conversions.whatsapp")
	b.ReportAllocs()
	for b.Loop() {
		if Enabled() {
			b.Fatal("on")
		}
		Inject(ctx, m)
	}
}
