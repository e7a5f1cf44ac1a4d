package opsapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/internal/forward"
	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/opsapi"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// TestForwardDeadLetters: a webhook body forwarding gave up on (dlq.forward)
// is listed with ?reason=forward, shown with its contact names and message
// text redacted as the capture redacts them (and wa_id masked), and redriven
// by reason and by sequence, back to its destination. Before, reason=forward
// was refused, the names and text showed, and a redrive matched nothing.
func TestForwardDeadLetters(t *testing.T) {
	ns := natstest.RunJetStream(t)
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	var up atomic.Bool
	var mu sync.Mutex
	got := 0
	inbox := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		mu.Lock()
		got++
		mu.Unlock()
	}))
	t.Cleanup(inbox.Close)
	cfg := forward.Config{URLs: []string{inbox.URL}, MaxAge: 200 * time.Millisecond, Concurrency: 2, Timeout: time.Second,
		RetryMin: 5 * time.Millisecond, RetryMax: 40 * time.Millisecond}
	enq, err := forward.NewEnqueuer(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := forward.New(js, cfg, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fwd.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	body, err := os.ReadFile("../../pkg/webhook/testdata/whatsapp_cloud_batched_two_messages.json")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		b := bytes.Replace(body, []byte(`"wamid.A1"`), []byte(`"wamid.A1-`+strconv.Itoa(i)+`"`), 1)
		h := http.Header{"Content-Type": {"application/json"}, webhook.SignatureHeader: {webhook.Sign(b, []byte("s"))}}
		if err := enq.Enqueue(t.Context(), b, h); err != nil {
			t.Fatal(err)
		}
	}

	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	adm := admin.New(admin.Config{Token: "tok"}, zap.NewNop(), prometheus.NewRegistry())
	opsapi.Register(adm.API(), opsapi.Deps{Redis: rdb, JS: js})
	srv := httptest.NewServer(adm.Handler())
	t.Cleanup(srv.Close)

	var list struct {
		DeadLetters []struct {
			Seq    uint64 `json:"seq"`
			Reason string `json:"reason"`
		} `json:"dead_letters"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, text := get(t, srv.URL+"/v1/dead-letters?reason=forward", "tok")
		if code != http.StatusOK {
			t.Fatalf("GET /v1/dead-letters?reason=forward = %d %s; want 200", code, text)
		}
		if err := json.Unmarshal([]byte(text), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.DeadLetters) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("forward dead letters listed: %s; want 2", text)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, l := range list.DeadLetters {
		if l.Reason != "forward" {
			t.Errorf("listed reason %q; want forward", l.Reason)
		}
	}

	code, text := get(t, srv.URL+"/v1/dead-letters/"+strconv.FormatUint(list.DeadLetters[0].Seq, 10), "tok")
	if code != http.StatusOK {
		t.Fatalf("show = %d %s", code, text)
	}
	for _, personal := range []string{`"Ana"`, `"Bo"`, `"oi"`, "5511988887777", "ARAsecondClickId_x8GJ2k1"} {
		if strings.Contains(text, personal) {
			t.Errorf("a forward dead letter shows %s: %s", personal, text)
		}
	}
	if !strings.Contains(text, webhook.RedactedText) {
		t.Errorf("the shown body holds no %q: %s", webhook.RedactedText, text)
	}

	up.Store(true)
	redrive := func(req string) (int, map[string]any) {
		t.Helper()
		hreq, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/dead-letters/redrive", strings.NewReader(req))
		hreq.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	seq := list.DeadLetters[0].Seq
	if code, out := redrive(fmt.Sprintf(`{"seqs":[%d]}`, seq)); code != http.StatusOK || out["matched"] != 1.0 || out["redriven"] != 1.0 {
		t.Fatalf("redrive by seq = %d %v; want 1 matched and redriven", code, out)
	}
	if code, out := redrive(`{"reason":"forward"}`); code != http.StatusOK || out["matched"] != 1.0 || out["redriven"] != 1.0 {
		t.Fatalf("redrive reason=forward = %d %v; want the other one matched and redriven", code, out)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := got
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the inbox got %d redriven bodies; want 2", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
