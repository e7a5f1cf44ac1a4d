package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

const (
	testToken  = "intake-token-0123456789"
	otherToken = "intake-token-rotated-abcdef"
)

// env is an intake Handler behind an HTTP server, publishing to an
// in-process JetStream whose streams the real sender created.
type env struct {
	t    testing.TB
	nats *natstest.Server
	js   jetstream.JetStream // the test's own view of the streams
	h    *Handler
	srv  *httptest.Server
	logs *observer.ObservedLogs
	reg  *prometheus.Registry
}

// newEnv starts JetStream, lets the sender create its streams (unless
// noStreams), and serves a Handler configured by cfg (the test tokens when
// cfg.Tokens is nil).
func newEnv(t testing.TB, cfg Config, noStreams bool) *env {
	t.Helper()
	return newEnvWrap(t, cfg, noStreams, nil)
}

// newEnvWrap is newEnv with the Handler's publisher wrapped by wrap before
// it serves.
func newEnvWrap(t testing.TB, cfg Config, noStreams bool, wrap func(publisher) publisher) *env {
	t.Helper()
	e := &env{t: t, nats: natstest.RunJetStream(t)}
	js, err := jetstream.New(e.nats.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	e.js = js
	if !noStreams {
		createStreamsAsSender(t, e.nats, js)
	}
	if cfg.Tokens == nil {
		cfg.Tokens = []string{testToken, otherToken}
	}
	core, logs := observer.New(zap.DebugLevel)
	e.logs, e.reg = logs, prometheus.NewRegistry()
	e.h, err = New(cfg, Deps{Log: zap.New(core), NATS: e.nats.Connect(t), Registerer: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		e.h.pub = wrap(e.h.pub)
	}
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.checkLogs)
	return e
}

// createStreamsAsSender runs the sender until it has created its streams,
// so that the intake is tested against the stream configuration the sender
// makes, not a copy of it that could drift.
func createStreamsAsSender(t testing.TB, ns *natstest.Server, js jetstream.JetStream) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	dry, err := sender.NewDryRun(filepath.Join(t.TempDir(), "dry.jsonl"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	sjs, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := sender.DefaultConfig()
	cfg.DryRunFile = "dry.jsonl"
	svc, err := sender.New(cfg, sender.Deps{Log: zap.NewNop(), JS: sjs, Store: attribution.NewStore(rdb, 0),
		Redis: rdb, Poster: dry, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	poll.CheckFor(t, 10*time.Second, func() error {
		_, err := js.Stream(t.Context(), sender.StreamConversions)
		return err
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("sender Run: %v", err)
	}
}

// reply is an answer of the intake: its status and JSON.
type reply struct {
	Status     int
	Header     http.Header
	Error      string    `json:"error"`
	Accepted   int       `json:"accepted"`
	Duplicates int       `json:"duplicates"`
	Invalid    []Invalid `json:"invalid"`
	Raw        string
}

// post sends body with the first test token.
func (e *env) post(body []byte, contentType string) reply {
	e.t.Helper()
	return e.postAuth(body, contentType, "Bearer "+testToken)
}

func (e *env) postAuth(body []byte, contentType, auth string) reply {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+Path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) reply {
	e.t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := reply{Status: resp.StatusCode, Header: resp.Header, Raw: string(b)}
	if err := json.Unmarshal(b, &r); err != nil {
		e.t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, b)
	}
	return r
}

// stored is a message of stream CONVERSIONS.
type stored struct {
	Subject, MsgID string
	Data           []byte
}

// stored returns every message of stream CONVERSIONS, in order.
func (e *env) stored() []stored {
	e.t.Helper()
	ctx := e.t.Context()
	st, err := e.js.Stream(ctx, sender.StreamConversions)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []stored
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			e.t.Fatalf("GetMsg(%d): %v", seq, err)
		}
		out = append(out, stored{Subject: m.Subject, MsgID: m.Header.Get("Nats-Msg-Id"), Data: m.Data})
	}
	return out
}

// storedOnce checks that the stream holds exactly the conversions of
// items, each once, as sent, on its channel's subject.
func (e *env) storedOnce(items []testItem) {
	e.t.Helper()
	got := e.stored()
	if len(got) != len(items) {
		e.t.Errorf("stream holds %d messages; want %d", len(got), len(items))
	}
	byID := map[string]stored{}
	for _, m := range got {
		if _, dup := byID[m.MsgID]; dup {
			e.t.Errorf("event %s stored twice", m.MsgID)
		}
		byID[m.MsgID] = m
	}
	for _, it := range items {
		m, ok := byID[it.id]
		switch {
		case !ok:
			e.t.Errorf("event %s not stored", it.id)
		case m.Subject != "conversions."+it.channel:
			e.t.Errorf("event %s on subject %s; want conversions.%s", it.id, m.Subject, it.channel)
		case !bytes.Equal(m.Data, it.json):
			e.t.Errorf("event %s stored as %s; want the bytes sent, %s", it.id, m.Data, it.json)
		}
	}
}

// testItem is a conversion of a test body.
type testItem struct {
	id, channel, user string
	json              []byte
}

// conversions returns n valid conversions on the three channels, with
// event ids prefix-0000… and user ids that checkLogs looks for.
func conversions(prefix string, n int) []testItem {
	chans := []string{"whatsapp", "messenger", "instagram"}
	out := make([]testItem, n)
	for i := range out {
		it := testItem{id: fmt.Sprintf("%s-%04d", prefix, i), channel: chans[i%3], user: fmt.Sprintf("1631555%04d", i)}
		it.json = fmt.Appendf(nil, `{"event_id":%q,"event_name":"Purchase","channel":%q,"business_id":"104222339999001","user_id":%q,"custom_data":{"currency":"USD","value":%d.5}}`,
			it.id, it.channel, it.user, i)
		out[i] = it
	}
	return out
}

func ndjson(items []testItem) []byte {
	var b bytes.Buffer
	for _, it := range items {
		b.Write(it.json)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func array(items []testItem) []byte {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = string(it.json)
	}
	return []byte("[\n  " + strings.Join(parts, ",\n  ") + "\n]")
}

// checkLogs fails the test when a log entry holds a user id or a token.
func (e *env) checkLogs() {
	for _, entry := range e.logs.All() {
		b, _ := json.Marshal(entry.ContextMap())
		line := entry.Message + " " + string(b)
		for _, s := range []string{"1631555", testToken, otherToken} {
			if strings.Contains(line, s) {
				e.t.Errorf("log %q holds %q", line, s)
			}
		}
	}
}
