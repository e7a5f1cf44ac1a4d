package ingest

import (
	"net/http"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ctmpipe/ctmpipe/internal/tracing"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// record installs an SDK tracer provider with an in-memory recorder for the
// test (not parallel: the provider is global).
func recordSpans(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(tracing.Install(tp))
	return rec
}

func spansNamed(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// A stored delivery is one "webhook" span, a root, with "webhook.verify"
// and "webhook.store" children; its attributes name the channel, the clicks
// and the status, never a user's id or click id, and a traceparent sent by
// the caller is ignored.
func TestWebhookSpans(t *testing.T) {
	var ex expectation
	for _, x := range expectations(t) {
		if !strings.Contains(x.File, "onprem") && len(x.Touches) > 0 && x.Touches[0].ClickID != "" {
			ex = x
			break
		}
	}
	if ex.File == "" {
		t.Fatal("no fixture with a click")
	}
	rec := recordSpans(t)
	e := newTestEnv(t, nil, nil)
	body := fixture(t, ex.File)
	h := http.Header{"Content-Type": {"application/json"}, "Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	h.Set(webhook.SignatureHeader, webhook.Sign(body, []byte(testAppSecret)))
	if r := e.do(http.MethodPost, "/webhook", body, h); r.Code != http.StatusOK {
		t.Fatalf("POST %s = %d", ex.File, r.Code)
	}
	spans := rec.Ended()
	roots := spansNamed(spans, "webhook")
	if len(roots) != 1 {
		t.Fatalf("%d webhook spans; want 1 (spans: %d)", len(roots), len(spans))
	}
	root := roots[0]
	if root.Parent().IsValid() || root.SpanContext().TraceID().String() == "0af7651916cd43dd8448eb211c80319c" {
		t.Error("the webhook span joined the caller's traceparent")
	}
	if root.SpanKind() != trace.SpanKindServer {
		t.Errorf("kind %v", root.SpanKind())
	}
	for _, name := range []string{"webhook.verify", "webhook.store"} {
		c := spansNamed(spans, name)
		if len(c) != 1 || c[0].Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("%s: %d spans, or not a child of the webhook span", name, len(c))
		}
	}
	attrs := map[string]string{}
	for _, s := range spans {
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
	}
	if attrs[tracing.AttrStatusCode] != "200" || attrs[tracing.AttrChannel] == "" || attrs[tracing.AttrTouches] == "" {
		t.Errorf("attributes %v; want status 200, channel and touches", attrs)
	}
	for _, tc := range ex.Touches {
		for _, id := range []string{tc.UserID, tc.BSUID, tc.Parent, tc.From, tc.ClickID} {
			for k, v := range attrs {
				if id != "" && strings.Contains(v, id) {
					t.Errorf("attribute %s holds a personal id", k)
				}
			}
		}
	}
}

// A delivery whose signature does not match ends after a failed verify,
// with no store span and the 401 (or 403) it answered.
func TestWebhookSpanBadSignature(t *testing.T) {
	rec := recordSpans(t)
	e := newTestEnv(t, nil, nil)
	body := fixture(t, expectations(t)[0].File)
	r := e.post(body, "not-the-secret")
	if r.Code == http.StatusOK {
		t.Fatal("a wrongly signed delivery got 200")
	}
	spans := rec.Ended()
	if v := spansNamed(spans, "webhook.verify"); len(v) != 1 || v[0].Status().Code.String() != "Error" {
		t.Errorf("verify span missing or not failed")
	}
	if len(spansNamed(spans, "webhook.store")) != 0 {
		t.Error("a store span after a failed verify")
	}
	roots := spansNamed(spans, "webhook")
	if len(roots) != 1 {
		t.Fatalf("%d webhook spans", len(roots))
	}
	for _, kv := range roots[0].Attributes() {
		if string(kv.Key) == tracing.AttrStatusCode && kv.Value.AsInt64() != int64(r.Code) {
			t.Errorf("status attribute %d; answered %d", kv.Value.AsInt64(), r.Code)
		}
	}
}
