// Package tracing sets up OpenTelemetry traces for the services and carries
// the W3C trace context in NATS message headers, so that one conversion can
// be followed from the intake (or cmd/publish) through the sender to its
// Graph API request. Traces are off unless OTEL_EXPORTER_OTLP_ENDPOINT is
// set: then the global tracer provider stays OpenTelemetry's no-op, a span
// costs a few nanoseconds and nothing is exported. See docs/tracing.md for
// the spans and their attributes; none holds a personal id or a token.
//
// Unlike the rest of ctmpipe, this package works through a global: the
// OpenTelemetry tracer provider (otel.SetTracerProvider) and a flag that
// says whether one is installed. OpenTelemetry is built around that global,
// and threading a provider through every constructor of ingest, the intake
// and the sender would change their signatures for a cross-cutting concern
// that is off by default. Tests install a provider with Install and are not
// parallel while it is installed.
package tracing

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/settings"
)

// The standard OpenTelemetry variables this package reads.
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvServiceName    = "OTEL_SERVICE_NAME"
)

// Name is the instrumentation scope of every ctmpipe span.
const Name = "github.com/ctmpipe/ctmpipe"

// Settings are the tracing settings every service lists in --help.
func Settings() []settings.Setting {
	return []settings.Setting{
		{Env: EnvEndpoint, Flag: "otel-endpoint", Help: "OTLP/HTTP collector base URL (e.g. http://localhost:4318, Jaeger's OTLP port); spans go to <url>/v1/traces; unset: tracing off"},
		{Env: EnvServiceName, Flag: "otel-service-name", Help: "service.name of this process's spans (default: the binary's name, e.g. ctmpipe-sender)"},
	}
}

// Config is what Setup needs, read from settings.Values.
type Config struct {
	Endpoint    string // OTEL_EXPORTER_OTLP_ENDPOINT; empty: off
	ServiceName string // OTEL_SERVICE_NAME; empty: the caller's default
}

// FromValues reads the tracing settings from v.
func FromValues(v *settings.Values) Config {
	return Config{Endpoint: strings.TrimSpace(v.Text(EnvEndpoint)), ServiceName: strings.TrimSpace(v.Text(EnvServiceName))}
}

// Getenv returns getenv with c's values (which flags may have set) in
// place of the environment's.
func (c Config) Getenv(getenv func(string) string) func(string) string {
	return func(k string) string {
		switch k {
		case EnvEndpoint:
			return c.Endpoint
		case EnvServiceName:
			return c.ServiceName
		}
		return getenv(k)
	}
}

// enabled is set while an SDK tracer provider is installed: code that would
// do work only for spans (reading many headers for links) asks Enabled.
var enabled atomic.Bool

// Enabled reports whether spans are being recorded and exported.
func Enabled() bool { return enabled.Load() }

// prop is the W3C trace context propagator (traceparent, tracestate). It is
// used directly, not through otel's global, so that injecting and extracting
// do not depend on what else set the global.
var prop propagation.TextMapPropagator = propagation.TraceContext{}

// Setup installs the global tracer provider. With OTEL_EXPORTER_OTLP_ENDPOINT
// unset (from getenv) it installs nothing and returns a no-op shutdown.
// Otherwise spans are batched to the collector over OTLP/HTTP, named
// OTEL_SERVICE_NAME or serviceName; the sampler is the SDK's (parent-based,
// always on; OTEL_TRACES_SAMPLER changes it). shutdown flushes what is
// buffered within ctx.
func Setup(ctx context.Context, serviceName string, getenv func(string) string) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	base := strings.TrimSpace(getenv(EnvEndpoint))
	if base == "" {
		return noop, nil
	}
	endpoint, err := tracesURL(base, strings.TrimSpace(getenv(EnvTracesEndpoint)))
	if err != nil {
		return noop, err
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return noop, fmt.Errorf("config: %s: %w", EnvEndpoint, err)
	}
	if n := strings.TrimSpace(getenv(EnvServiceName)); n != "" {
		serviceName = n
	}
	res := resource.NewSchemaless(semconv.ServiceName(serviceName))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	restore := Install(tp)
	return func(ctx context.Context) error {
		err := tp.Shutdown(ctx)
		restore()
		return err
	}, nil
}

// tracesURL is where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is,
// else OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces appended (the OTLP
// exporter specification's rule for the base URL).
func tracesURL(base, traces string) (string, error) {
	raw, name := strings.TrimSuffix(base, "/")+"/v1/traces", EnvEndpoint
	if traces != "" {
		raw, name = traces, EnvTracesEndpoint
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("config: %s: want an http:// or https:// URL, e.g. http://localhost:4318", name)
	}
	return raw, nil
}

// Install makes tp the global tracer provider and turns Enabled on; the
// returned func puts back the no-op provider. Tests install an SDK provider
// with an in-memory exporter this way.
func Install(tp trace.TracerProvider) (restore func()) {
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	enabled.Store(true)
	return func() {
		enabled.Store(false)
		otel.SetTracerProvider(prev)
	}
}

// Tracer is the tracer of every ctmpipe span.
func Tracer() trace.Tracer { return otel.Tracer(Name) }

// Header adapts a nats.Header to propagation.TextMapCarrier.
type Header nats.Header

// Get returns the first value of key.
func (h Header) Get(key string) string { return nats.Header(h).Get(key) }

// Set sets key to value.
func (h Header) Set(key, value string) { nats.Header(h).Set(key, value) }

// Keys lists the header's keys.
func (h Header) Keys() []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	return out
}

// Inject writes ctx's span context into m's headers (traceparent and, when
// present, tracestate). With no recording span in ctx it writes nothing.
func Inject(ctx context.Context, m *nats.Msg) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return
	}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	prop.Inject(ctx, Header(m.Header))
}

// Extract returns the span context carried by h, invalid when it carries
// none (or a malformed one).
func Extract(h nats.Header) trace.SpanContext {
	if h == nil || h.Get("traceparent") == "" {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(prop.Extract(context.Background(), Header(h)))
}

// Fail marks span failed with a short, fixed description (never an error
// string that could hold a value from a payload).
func Fail(span trace.Span, what string) {
	span.SetStatus(codes.Error, what)
}

// LogStarted says at start whether traces are exported, and as which
// service (the collector's URL may hold credentials and is not logged).
func LogStarted(log *zap.Logger, getenv func(string) string, serviceName string) {
	if !Enabled() {
		return
	}
	if n := strings.TrimSpace(getenv(EnvServiceName)); n != "" {
		serviceName = n
	}
	log.Info("traces exported over OTLP/HTTP ("+EnvEndpoint+")", zap.String("service_name", serviceName))
}

// Stop runs shutdown with a few seconds to flush, logging a failure (the
// collector away): spans are lost then, nothing else.
func Stop(shutdown func(context.Context) error, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		log.Warn("traces not flushed to the OTLP collector", zap.Error(err))
	}
}

// The attributes ctmpipe's spans may carry (docs/tracing.md). None holds a
// personal id (wa_id, BSUID, PSID, IGSID, ctwa_clid, phone number, name) or
// a token; event_id is the order system's id, logged already (docs/trail.md).
const (
	AttrStatusCode  = "http.response.status_code" // the answer given (webhook, intake) or got (Graph)
	AttrChannel     = "ctm.channel"               // whatsapp, messenger, instagram, onprem
	AttrBusinessID  = "ctm.business_id"           // the WABA, Page or IG account id
	AttrDatasetID   = "ctm.dataset_id"            // the Conversions API dataset
	AttrEventCount  = "ctm.event_count"           // valid conversions in the request or batch
	AttrEventID     = "ctm.event_id"              // a single conversion's event_id (cmd/publish's lines)
	AttrAccepted    = "ctm.accepted"              // stored by JetStream
	AttrDuplicates  = "ctm.duplicates"            // already stored (same Nats-Msg-Id)
	AttrInvalid     = "ctm.invalid"               // refused by the contract
	AttrTouches     = "ctm.touches"               // ad clicks a webhook delivery carried
	AttrMetaCode    = "ctm.meta_error_code"       // Meta's error code when the Graph API refused
	AttrEventsRecvd = "ctm.events_received"       // Meta's events_received
	AttrFBTraceID   = "ctm.fbtrace_id"            // Meta's fbtrace_id of the answer, for Meta's support
)
