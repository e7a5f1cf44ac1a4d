package ingest

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// The HTTP benchmarks compare POST /webhook (verify, parse, one real Redis
// round trip) with a bare echo handler answering 200, both over loopback TCP
// with 64 concurrent keep-alive clients:
//
//	go test ./internal/ingest -run '^$' -bench 'HTTP' -benchtime 2s
//
// The hot-path target is ingest ≥ 0.55 × the bare handler's requests/s.

const benchConns = 64

// benchServe serves h on loopback until the benchmark ends.
func benchServe(b *testing.B, h http.Handler) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln) //nolint:errcheck // closed below
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// benchPost posts body with header from benchConns goroutines.
func benchPost(b *testing.B, url string, body []byte, header http.Header) {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: benchConns, MaxConnsPerHost: benchConns}
	client := &http.Client{Transport: tr}
	b.Cleanup(tr.CloseIdleConnections)
	b.SetParallelism((benchConns + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			for k, v := range header {
				req.Header[k] = v
			}
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
}

func BenchmarkHTTPBareEcho(b *testing.B) {
	e := echo.New()
	e.POST("/webhook", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	url := benchServe(b, e)
	benchPost(b, url+"/webhook", fixture(b, "whatsapp_cloud_text_with_ctwa_referral.json"), nil)
}

func BenchmarkHTTPIngestWebhook(b *testing.B) {
	store, _ := redisStore(b)
	srv, err := New(testConfig(), Deps{Logger: zap.NewNop(), Store: store})
	if err != nil {
		b.Fatal(err)
	}
	url := benchServe(b, srv.Handler())
	body := fixture(b, "whatsapp_cloud_text_with_ctwa_referral.json")
	benchPost(b, url+"/webhook", body, http.Header{webhook.SignatureHeader: {webhook.Sign(body, []byte(testAppSecret))}})
}

// BenchmarkHandlerWebhook is the handler alone (no network), with a store
// that returns at once: what ingest itself costs per delivery.
func BenchmarkHandlerWebhook(b *testing.B) {
	store, _ := redisStore(b)
	srv, err := New(testConfig(), Deps{Logger: zap.NewNop(), Store: store})
	if err != nil {
		b.Fatal(err)
	}
	srv.rec = recorderFunc(func(context.Context, []attribution.Touch) error { return nil })
	body := fixture(b, "whatsapp_cloud_text_with_ctwa_referral.json")
	sig := webhook.Sign(body, []byte(testAppSecret))
	h := srv.Handler()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, sig)
		w := discardWriter{h: http.Header{}}
		h.ServeHTTP(&w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
