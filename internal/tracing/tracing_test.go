package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// collector counts the OTLP export requests it gets.
func collector(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			n.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// With OTEL_EXPORTER_OTLP_ENDPOINT unset nothing records a span, nothing is
// injected into a message and nothing reaches a collector, even one named
// by the traces-only variable.
func TestSetupOffRecordsNothing(t *testing.T) {
	srv, exports := collector(t)
	shutdown, err := Setup(t.Context(), "ctmpipe-test", env(map[string]string{EnvTracesEndpoint: srv.URL + "/v1/traces"}))
	if err != nil {
		t.Fatal(err)
	}
	if Enabled() {
		t.Fatal("Enabled with the endpoint unset")
	}
	ctx, span := Tracer().Start(context.Background(), "x")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("a span records with tracing off")
	}
	m := nats.NewMsg("conversions.whatsapp")
	Inject(ctx, m)
	if len(m.Header) != 0 {
		t.Errorf("headers %v injected with tracing off", m.Header)
	}
	span.End()
	if err := shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := exports.Load(); n != 0 {
		t.Errorf("%d exports with tracing off", n)
	}
}

// With the endpoint set, spans reach the collector at <endpoint>/v1/traces
// and OTEL_SERVICE_NAME names them.
func TestSetupExports(t *testing.T) {
	srv, exports := collector(t)
	shutdown, err := Setup(t.Context(), "ctmpipe-test", env(map[string]string{EnvEndpoint: srv.URL + "/"}))
	if err != nil {
		t.Fatal(err)
	}
	if !Enabled() {
		t.Fatal("not Enabled with the endpoint set")
	}
	_, span := Tracer().Start(context.Background(), "x")
	if !span.IsRecording() {
		t.Error("span not recording")
	}
	span.End()
	if err := shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if exports.Load() == 0 {
		t.Error("no span exported")
	}
	if Enabled() {
		t.Error("still Enabled after shutdown")
	}
}

func TestSetupBadEndpoint(t *testing.T) {
	for _, ep := range []string{"localhost:4318", "ftp://x", "http://%zz"} {
		if _, err := Setup(t.Context(), "x", env(map[string]string{EnvEndpoint: ep})); err == nil {
			t.Errorf("%q: no error", ep)
		}
	}
	if Enabled() {
		t.Error("Enabled after a failed Setup")
	}
}

// Inject and Extract carry a span context through NATS headers.
func TestHeaderRoundTrip(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer Install(tp)()
	ctx, span := Tracer().Start(context.Background(), "publish")
	defer span.End()
	m := nats.NewMsg("conversions.whatsapp")
	m.Header.Set("Nats-Msg-Id", "ord-1")
	Inject(ctx, m)
	if m.Header.Get("traceparent") == "" {
		t.Fatalf("no traceparent in %v", m.Header)
	}
	got := Extract(m.Header)
	if !got.IsValid() || got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() || !got.IsRemote() {
		t.Errorf("extracted %v; want remote %v", got, span.SpanContext())
	}
	for _, h := range []nats.Header{nil, {}, {"Traceparent": {"garbage"}}} {
		if sc := Extract(h); sc.IsValid() {
			t.Errorf("Extract(%v) = %v; want invalid", h, sc)
		}
	}
	var _ trace.SpanContext = got
}
