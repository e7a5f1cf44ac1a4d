package ingest

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ctmpipe/ctmpipe/internal/tracing"
)

// traced wraps a webhook handler in a "webhook" span (docs/tracing.md) when
// tracing is on; off, it is h. Each delivery is a root of its own: a
// traceparent in the request is not Meta's and is ignored, since anyone may
// call the webhook.
func (s *Server) traced(name string, h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !tracing.Enabled() {
			return h(c)
		}
		req := c.Request()
		ctx, span := tracing.Tracer().Start(req.Context(), name, trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		c.SetRequest(req.WithContext(ctx))
		err := h(c)
		status := c.Response().Status
		var he *httpError
		var ee *echo.HTTPError
		switch {
		case err == nil:
		case errors.As(err, &he):
			status = he.status
		case errors.As(err, &ee):
			status = ee.Code
		default:
			status = http.StatusInternalServerError
		}
		span.SetAttributes(attribute.Int(tracing.AttrStatusCode, status))
		if status != http.StatusOK {
			tracing.Fail(span, "webhook not taken: "+http.StatusText(status))
		}
		return err
	}
}

// childSpan starts a child of the webhook's span; off, it returns ctx and
// nil (endSpan takes nil).
func childSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	if !tracing.Enabled() {
		return ctx, nil
	}
	return tracing.Tracer().Start(ctx, name)
}

// endSpan ends span, failed with what when failed is true.
func endSpan(span trace.Span, failed bool, what string) {
	if span == nil {
		return
	}
	if failed {
		tracing.Fail(span, what)
	}
	span.End()
}

// setAttrs sets the channel and clicks of a delivery on ctx's span.
func setAttrs(ctx context.Context, ch channel, touches int) {
	if !tracing.Enabled() {
		return
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String(tracing.AttrChannel, ch.String()), attribute.Int(tracing.AttrTouches, touches))
}
