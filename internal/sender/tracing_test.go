package sender_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/intake"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/tracing"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// postIntake posts body to an intake on e's NATS and wants 202.
func (e *env) postIntake(body []byte) {
	e.t.Helper()
	h, err := intake.New(intake.Config{Tokens: []string{"intake-token-0123456789"}}, intake.Deps{Log: zap.NewNop(), NATS: e.nats.Connect(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	req := httptest.NewRequestWithContext(e.t.Context(), http.MethodPost, intake.Path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer intake-token-0123456789")
	req.Header.Set("Content-Type", "application/x-ndjson")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		e.t.Fatalf("intake answered %d: %s", rec.Code, rec.Body)
	}
}

// traceparents returns the traceparent header of every message in
// CONVERSIONS, by sequence.
func (e *env) traceparents(n int) []string {
	e.t.Helper()
	st, err := e.js.Stream(e.t.Context(), sender.StreamConversions)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]string, n)
	for i := range n {
		m, err := st.GetMsg(e.t.Context(), uint64(i+1))
		if err != nil {
			e.t.Fatal(err)
		}
		out[i] = m.Header.Get("traceparent")
	}
	return out
}

// The chain: an intake POST is a span whose context every published message
// carries (traceparent), and the sender's Graph request span is a child of
// the first message's context and links to each message's; its attributes
// hold the business, dataset, count and status, never a user id.
func TestTraceIntakeToGraph(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(tracing.Install(tp))
	e := newEnv(t, func(c *sender.Config) { c.Linger = 200 * time.Millisecond })
	e.touch(attribution.Messenger, "p1", "psid-trace-1")
	e.touch(attribution.Messenger, "p1", "psid-trace-2")
	body := append(append(conv("tr-1", "messenger", "p1", "psid-trace-1"), '\n'), conv("tr-2", "messenger", "p1", "psid-trace-2")...)
	e.postIntake(body)
	e.waitSent(20*time.Second, "tr-1", "tr-2")

	var intakeSpan sdktrace.ReadOnlySpan
	var graph []sdktrace.ReadOnlySpan
	e.waitFor(5*time.Second, "graph.send span ended", func() bool {
		graph = graph[:0]
		for _, s := range rec.Ended() {
			switch s.Name() {
			case "intake.request":
				intakeSpan = s
			case "graph.send":
				graph = append(graph, s)
			}
		}
		return intakeSpan != nil && len(graph) > 0
	})
	want := intakeSpan.SpanContext()
	for i, tp := range e.traceparents(2) {
		if tp == "" || !bytes.Contains([]byte(tp), []byte(want.TraceID().String())) {
			t.Errorf("message %d traceparent %q; want the intake's trace %s", i+1, tp, want.TraceID())
		}
	}
	linked := 0
	for _, g := range graph {
		if g.SpanKind() != trace.SpanKindClient {
			t.Errorf("graph.send kind %v", g.SpanKind())
		}
		if g.Parent().TraceID() != want.TraceID() || g.Parent().SpanID() != want.SpanID() {
			t.Errorf("graph.send parent %v; want the intake span %v", g.Parent(), want)
		}
		for _, l := range g.Links() {
			if l.SpanContext.TraceID() == want.TraceID() && l.SpanContext.SpanID() == want.SpanID() {
				linked++
			}
		}
		attrs := attribute.NewSet(g.Attributes()...)
		if v, _ := attrs.Value(tracing.AttrBusinessID); v.AsString() != "p1" {
			t.Errorf("business_id attribute %q", v.AsString())
		}
		if v, _ := attrs.Value(tracing.AttrStatusCode); v.AsInt64() != http.StatusOK {
			t.Errorf("status attribute %d", v.AsInt64())
		}
		for _, kv := range g.Attributes() {
			if s := kv.Value.Emit(); bytes.Contains([]byte(s), []byte("psid-trace")) {
				t.Errorf("attribute %s holds a PSID", kv.Key)
			}
		}
	}
	if linked != 2 {
		t.Errorf("graph.send spans link %d times to the intake's context; want once per message (2)", linked)
	}
	// The trace context stays inside the pipeline: Meta gets none.
	seen := e.fake.HeaderNames()
	if seen["Content-Type"] == 0 {
		t.Fatalf("the fake Graph recorded no request headers: %v", seen)
	}
	for _, h := range []string{"Traceparent", "Tracestate", "Baggage"} {
		if seen[h] != 0 {
			t.Errorf("%d requests to the Graph API carried %s", seen[h], h)
		}
	}
}

// Off (no provider installed, as without OTEL_EXPORTER_OTLP_ENDPOINT), the
// intake's messages carry no traceparent and the conversions still go.
func TestTraceOffNoHeaders(t *testing.T) {
	if tracing.Enabled() {
		t.Fatal("tracing on at the start of the test")
	}
	e := newEnv(t, nil)
	e.touch(attribution.Messenger, "p1", "psid-off")
	e.postIntake(conv("off-1", "messenger", "p1", "psid-off"))
	e.waitSent(20*time.Second, "off-1")
	if tp := e.traceparents(1)[0]; tp != "" {
		t.Errorf("traceparent %q with tracing off", tp)
	}
}
