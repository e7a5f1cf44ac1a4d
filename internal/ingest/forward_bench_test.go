package ingest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/forward"
	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// BenchmarkHTTPWebhookForward compares ingest with forwarding off and on,
// in one run, over a real Redis and an in-process JetStream (file store).
// Each request carries a WhatsApp click (one Redis write) and a distinct
// body (so that FORWARD stores each one: no duplicate short cut). Forwarding
// adds one synchronous JetStream publish per webhook; its rate is bounded
// by JetStream's acked writes. Run:
//
//	flock /tmp/cpu.lock go test ./internal/ingest -run '^$' -bench HTTPWebhookForward -benchtime 3s
func BenchmarkHTTPWebhookForward(b *testing.B) {
	base := fixture(b, "whatsapp_cloud_text_with_ctwa_referral.json")
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("forward=%v", on), func(b *testing.B) {
			store, _ := redisStore(b)
			deps := Deps{Logger: zap.NewNop(), Store: store}
			if on {
				js, err := jetstream.New(natstest.RunJetStream(b).Connect(b))
				if err != nil {
					b.Fatal(err)
				}
				enq, err := forward.NewEnqueuer(js, forward.Config{URLs: []string{"http://127.0.0.1:1/hook"}})
				if err != nil {
					b.Fatal(err)
				}
				deps.Forward = enq
			}
			srv, err := New(testConfig(), deps)
			if err != nil {
				b.Fatal(err)
			}
			url := benchServe(b, srv.Handler()) + "/webhook"
			tr := &http.Transport{MaxIdleConnsPerHost: benchConns, MaxConnsPerHost: benchConns}
			client := &http.Client{Transport: tr}
			b.Cleanup(tr.CloseIdleConnections)
			b.SetParallelism((benchConns + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			var n atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					// A distinct body: the same delivery with a field of its own.
					body := append(fmt.Appendf(nil, `{"bench_seq":%d,`, n.Add(1)), base[1:]...)
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
					req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, []byte(testAppSecret)))
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
