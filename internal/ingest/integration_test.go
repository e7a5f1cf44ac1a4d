package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

// liveServer is a Server answering real HTTP on a loopback port.
type liveServer struct {
	url   string
	srv   *Server
	store *attribution.Store
	done  chan error
	stop  context.CancelFunc
}

// serveLive runs a Server over store with deps on 127.0.0.1:0 until the test
// ends (or stop is called).
func serveLive(t *testing.T, cfg Config, deps Deps) *liveServer {
	t.Helper()
	if deps.Logger == nil {
		deps.Logger = zaptest.NewLogger(t)
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	ls := &liveServer{url: "http://" + ln.Addr().String(), srv: srv, store: deps.Store, done: make(chan error, 1), stop: cancel}
	go func() { ls.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ls.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ls
}

// send posts body to path with header and returns the status code.
func (ls *liveServer) send(t *testing.T, path string, body []byte, header http.Header) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ls.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (ls *liveServer) postSigned(t *testing.T, body []byte) int {
	t.Helper()
	return ls.send(t, "/webhook", body, http.Header{webhook.SignatureHeader: {webhook.Sign(body, []byte(testAppSecret))}})
}

func (ls *liveServer) get(t *testing.T, path string) int {
	t.Helper()
	resp, err := http.Get(ls.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// redisStore returns a store on a real redis-server.
func redisStore(t testing.TB) (*attribution.Store, *redistest.Server) {
	t.Helper()
	rs := redistest.Start(t)
	rdb, err := attribution.NewClient(rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return attribution.NewStore(rdb, 0), rs
}

// With a real Redis that crashes and comes back: 503 while it is away (so
// Meta retries), /readyz follows it, and deliveries store again after.
func TestIntegrationStoreDownAndBack(t *testing.T) {
	store, rs := redisStore(t)
	ls := serveLive(t, testConfig(), Deps{Store: store})
	body := fixture(t, "instagram_message_with_ad_referral.json")
	key := attribution.Key{Channel: "instagram", BusinessID: "17841405555555555", UserID: "1234567890123456"}

	if code := ls.postSigned(t, body); code != http.StatusOK {
		t.Fatalf("POST with Redis up = %d; want 200", code)
	}
	if _, err := store.Get(t.Context(), key); err != nil {
		t.Fatalf("Get after 200: %v", err)
	}

	rs.Kill()
	if code := ls.postSigned(t, body); code != http.StatusServiceUnavailable {
		t.Errorf("POST with Redis killed = %d; want 503", code)
	}
	if code := ls.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with Redis killed = %d; want 503", code)
	}
	if code := ls.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz with Redis killed = %d; want 200", code)
	}

	rs.Restart() // empty: no persistence
	if _, err := store.Get(t.Context(), key); !errors.Is(err, attribution.ErrNotFound) {
		t.Fatalf("Get on the restarted, empty Redis: %v; want ErrNotFound", err)
	}
	// The pool may hold dead connections; a redelivery must succeed within
	// a few attempts, as Meta's retries would.
	waitFor(t, 10*time.Second, "POST to answer 200 after the restart", func() bool {
		return ls.postSigned(t, body) == http.StatusOK
	})
	if code := ls.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("GET /readyz after the restart = %d; want 200", code)
	}
	got, err := store.Get(t.Context(), key)
	if err != nil || got.AdID != "120219999999999222" {
		t.Errorf("Get after the redelivery = %+v, %v; want the stored click", got, err)
	}
}

// Serve finishes an in-flight request after its context is cancelled.
func TestServeGracefulShutdown(t *testing.T) {
	store, _ := redisStore(t)
	gate := make(chan struct{})
	entered := make(chan struct{})
	srv, err := New(testConfig(), Deps{Logger: zap.NewNop(), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	srv.rec = recorderFunc(func(ctx context.Context, ts []attribution.Touch) error {
		close(entered)
		<-gate
		return store.Record(ctx, ts)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()

	body := fixture(t, "messenger_messaging_referral_ads.json")
	codes := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/webhook", bytes.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, []byte(testAppSecret)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			codes <- -1
			return
		}
		resp.Body.Close()
		codes <- resp.StatusCode
	}()
	<-entered
	cancel() // SIGTERM while the write is in flight
	waitFor(t, 5*time.Second, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-done:
		t.Fatalf("Serve returned %v before the in-flight request finished", err)
	default:
	}
	close(gate)
	if code := <-codes; code != http.StatusOK {
		t.Errorf("in-flight POST during shutdown = %d; want 200", code)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after shutdown = %v; want nil", err)
	}
	if _, err := store.Get(t.Context(), attribution.Key{Channel: "messenger", BusinessID: "109876543210987", UserID: "6789012345678902"}); err != nil {
		t.Errorf("Get after the in-flight write: %v", err)
	}
}

// recorderFunc adapts a function to recorder.
type recorderFunc func(context.Context, []attribution.Touch) error

func (f recorderFunc) Record(ctx context.Context, ts []attribution.Touch) error { return f(ctx, ts) }

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.CheckFor(t, d, func() error { return poll.Until(what, cond()) })
}

// commandCalls returns the calls of each command since the last CONFIG
// RESETSTAT, from INFO commandstats.
func commandCalls(t *testing.T, rdb *redis.Client) map[string]int {
	t.Helper()
	info, err := rdb.Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for _, line := range strings.Split(info, "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		calls[name], _ = strconv.Atoi(n)
	}
	return calls
}

// manyClicks is a signed WhatsApp delivery of n ad clicks from n customers
// (user ids prefix+index); the click at bad, if any, has a user id the store
// cannot key.
func manyClicks(n, bad int, prefix string) []byte {
	var b strings.Builder
	b.WriteString(`{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"messages":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		user := fmt.Sprintf("%s%06d", prefix, i)
		if i == bad {
			user += ":bad"
		}
		fmt.Fprintf(&b, `{"from":%q,"timestamp":"1763900000","referral":{"ctwa_clid":"C%d","source_id":"1"}}`, user, i)
	}
	b.WriteString(`]}}]}]}`)
	return []byte(b.String())
}

// Write amplification: 22,000 touches with one invalid among them are stored
// in a bounded number of Redis commands (there used to be one round trip per
// touch of the delivery holding the bad one), and a delivery over
// maxTouchesPerDelivery is refused whole with 413.
func TestIntegrationManyTouchesOneInvalid(t *testing.T) {
	store, rs := redisStore(t)
	cfg := testConfig()
	cfg.BodyLimit = 3 << 20
	ls := serveLive(t, cfg, Deps{Store: store})
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.ConfigResetStat(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}

	const deliveries, perDelivery = 5, 4400 // 22,000 touches
	for d := range deliveries {
		bad := -1
		if d == 2 {
			bad = 1234
		}
		if code := ls.postSigned(t, manyClicks(perDelivery, bad, fmt.Sprintf("1%d", d))); code != http.StatusOK {
			t.Fatalf("POST delivery %d = %d; want 200", d, code)
		}
	}
	// Per delivery ceil(4400/1000) script calls; the first delivery sends
	// them twice (EVALSHA, NOSCRIPT, then EVAL). Commands scripts run count
	// too, so GET and SET are not bounded here.
	calls := commandCalls(t, rdb)
	if scripts, max := calls["evalsha"]+calls["eval"], deliveries*5+5; scripts > max {
		t.Errorf("22,000 touches took %d script calls (%v); want at most %d", scripts, calls, max)
	}
	// The counters (stats.go) are written once a second, whenever: the
	// contexts are the keys but theirs.
	contexts := func() int64 {
		stats, _ := rdb.Keys(t.Context(), "ctm:stats:*").Result()
		return rdb.DBSize(t.Context()).Val() - int64(len(stats))
	}
	if got, want := contexts(), int64(deliveries*perDelivery-1+1); got != want {
		t.Errorf("DBSIZE = %d; want %d (every valid touch and the phone_number_id alias)", got, want)
	}

	// One delivery over the cap: 413, nothing of it stored.
	before := contexts()
	if code := ls.postSigned(t, manyClicks(maxTouchesPerDelivery+1, -1, "9")); code != http.StatusRequestEntityTooLarge {
		t.Errorf("POST %d touches = %d; want 413", maxTouchesPerDelivery+1, code)
	}
	if after := contexts(); after != before {
		t.Errorf("DBSIZE %d → %d after a refused delivery; want nothing stored", before, after)
	}
	if code := ls.postSigned(t, manyClicks(maxTouchesPerDelivery, -1, "8")); code != http.StatusOK {
		t.Errorf("POST %d touches = %d; want 200", maxTouchesPerDelivery, code)
	}
}
