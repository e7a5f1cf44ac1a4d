package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/tracing"
)

// With OTEL_EXPORTER_OTLP_ENDPOINT set, each published message carries a
// traceparent (the file's span) and the span reaches the collector; unset,
// no message carries one and nothing is exported.
func TestPublishTraceContext(t *testing.T) {
	var exports atomic.Int64
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/traces" {
			exports.Add(1)
		}
	}))
	defer col.Close()
	s := natstest.RunJetStream(t)
	js, err := jetstream.New(s.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CONVERSIONS", Subjects: []string{"conversions.>"}})
	if err != nil {
		t.Fatal(err)
	}
	line := func(id string) string {
		return `{"event_id":"` + id + `","event_name":"Purchase","channel":"messenger","business_id":"1","user_id":"2","custom_data":{"currency":"USD","value":1}}` + "\n"
	}
	for i, tc := range []struct {
		endpoint string
		traced   bool
	}{{"", false}, {col.URL, true}} {
		getenv := func(k string) string {
			if k == tracing.EnvEndpoint {
				return tc.endpoint
			}
			return ""
		}
		id := []string{"off-1", "on-1"}[i]
		var out bytes.Buffer
		if err := run(ctx, []string{"-nats", s.ClientURL(), "-"}, getenv, strings.NewReader(line(id)), &out, &out); err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		m, err := st.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get("traceparent") != ""; got != tc.traced {
			t.Errorf("endpoint %q: traceparent present = %v; want %v", tc.endpoint, got, tc.traced)
		}
		if got := exports.Load() > 0; got != tc.traced {
			t.Errorf("endpoint %q: exported = %v; want %v", tc.endpoint, got, tc.traced)
		}
	}
	if tracing.Enabled() {
		t.Error("tracing still on after run returned")
	}
}
