package sender

import (
	"context"
	"errors"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ctmpipe/ctmpipe/internal/tracing"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
)

// graphSpan starts the span of one Graph API request, or returns nil when
// tracing is off (no header is read then). A request carries up to 1,000
// events, each published under a trace of its own: the span links to every
// message's trace context, and is a child of the first message's, so that
// the trace of that conversion shows the request directly and the others
// find it through their link. Nothing of this goes to Meta: the request
// carries no traceparent.
func graphSpan(ctx context.Context, business string, ds dataset, items []*item) trace.Span {
	if !tracing.Enabled() {
		return nil
	}
	var parent trace.SpanContext
	links := make([]trace.Link, 0, len(items))
	for _, it := range items {
		sc := tracing.Extract(it.msg.Headers())
		if !sc.IsValid() {
			continue
		}
		if !parent.IsValid() {
			parent = sc
		}
		links = append(links, trace.Link{SpanContext: sc})
	}
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	_, span := tracing.Tracer().Start(ctx, "graph.send", trace.WithSpanKind(trace.SpanKindClient), trace.WithLinks(links...),
		trace.WithAttributes(attribute.String(tracing.AttrBusinessID, business), attribute.String(tracing.AttrDatasetID, ds.id),
			attribute.Int(tracing.AttrEventCount, len(items))))
	return span
}

// endGraphSpan records Meta's answer on span (nil: tracing off): the status,
// Meta's error code and fbtrace_id, never the error's message, which may
// quote event fields.
func endGraphSpan(span trace.Span, resp capi.Response, err error) {
	if span == nil {
		return
	}
	defer span.End()
	if err == nil {
		span.SetAttributes(attribute.Int(tracing.AttrStatusCode, http.StatusOK), attribute.Int(tracing.AttrEventsRecvd, resp.EventsReceived))
		if resp.FBTraceID != "" { // none in a dry run
			span.SetAttributes(attribute.String(tracing.AttrFBTraceID, resp.FBTraceID))
		}
		return
	}
	var ae *capi.APIError
	switch {
	case errors.As(err, &ae):
		span.SetAttributes(attribute.Int(tracing.AttrStatusCode, ae.Status), attribute.Int(tracing.AttrMetaCode, ae.Code),
			attribute.String(tracing.AttrFBTraceID, ae.FBTraceID))
		tracing.Fail(span, "Graph API error")
	case capi.IsInDoubt(err):
		tracing.Fail(span, "no answer from the Graph API (in doubt)")
	default:
		tracing.Fail(span, "request not sent")
	}
}
