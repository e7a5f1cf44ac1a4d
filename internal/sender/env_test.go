package sender_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

// env is a sender running in-process against a real redis-server, an
// in-process JetStream and the fake Graph API.
type env struct {
	t     testing.TB
	nats  *natstest.Server
	redis *redistest.Server
	rdb   *redis.Client
	store *attribution.Store
	fake  *fakegraph.Server
	js    jetstream.JetStream
	cfg   sender.Config
	logs  *observer.ObservedLogs
	reg   *prometheus.Registry
	deps  func(*sender.Deps)
	stop  func()
}

// testConfig has short waits so that retries happen within a test.
func testConfig(fake *fakegraph.Server) sender.Config {
	cfg := sender.DefaultConfig()
	cfg.AccessToken = fakegraph.DefaultToken
	cfg.GraphBase = fake.URL()
	cfg.BatchSize = 100
	cfg.MaxAckPending = 10000
	cfg.ContextWait = time.Minute
	cfg.ContextRetryMin = 50 * time.Millisecond
	cfg.ContextRetryMax = 200 * time.Millisecond
	cfg.RetryMin = 50 * time.Millisecond
	cfg.RetryMax = 300 * time.Millisecond
	cfg.PauseInterval = 300 * time.Millisecond
	cfg.HTTPTimeout = time.Second
	cfg.SendLease = 2 * time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	return cfg
}

func newEnv(t testing.TB, configure func(*sender.Config), redisArgs ...string) *env {
	t.Helper()
	return newEnvDeps(t, configure, nil, redisArgs...)
}

// newEnvDeps is newEnv with a hook that changes the sender's Deps.
func newEnvDeps(t testing.TB, configure func(*sender.Config), deps func(*sender.Deps), redisArgs ...string) *env {
	t.Helper()
	return newEnvGraph(t, fakegraph.Options{}, configure, deps, redisArgs...)
}

// newEnvGraph is newEnvDeps against a fake Graph API with options fo.
func newEnvGraph(t testing.TB, fo fakegraph.Options, configure func(*sender.Config), deps func(*sender.Deps), redisArgs ...string) *env {
	t.Helper()
	e := &env{t: t, deps: deps}
	e.redis = redistest.Start(t, redisArgs...)
	e.nats = natstest.RunJetStream(t)
	e.fake = fakegraph.New(t, fo)
	e.rdb = e.redis.Client(t)
	e.store = attribution.NewStore(e.rdb, 0)
	js, err := jetstream.New(e.nats.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	e.js = js
	e.cfg = testConfig(e.fake)
	if configure != nil {
		configure(&e.cfg)
	}
	core, logs := observer.New(zap.DebugLevel)
	e.logs = logs
	e.start(zap.New(core))
	t.Cleanup(e.checkLogs)
	return e
}

// start runs a sender with e.cfg on its own NATS connection until stop.
func (e *env) start(log *zap.Logger) {
	e.t.Helper()
	js, err := jetstream.New(e.nats.Connect(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	e.reg = prometheus.NewRegistry()
	deps := sender.Deps{Log: log, JS: js, Store: e.store, Redis: e.rdb, Registerer: e.reg}
	if e.deps != nil {
		e.deps(&deps)
	}
	svc, err := sender.New(e.cfg, deps)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Run: %v", err)
		}
	}
	e.t.Cleanup(e.stop)
	// Streams exist once Run got going; publishers need them.
	e.waitFor(10*time.Second, "streams", func() bool {
		_, err := e.js.Stream(context.Background(), sender.StreamDLQ)
		return err == nil
	})
}

func (e *env) restart() {
	e.stop()
	core, logs := observer.New(zap.DebugLevel)
	e.logs = logs
	e.start(zap.New(core))
}

// pii are values that must never appear in logs.
var pii = []string{"16315551234", "5511988887777", "6789012345678901", "1234567890123456", "clid-", "psid-", "igsid-", "wa-"}

// checkLogs fails the test when a log entry holds personal data or a token.
func (e *env) checkLogs() {
	for _, entry := range e.logs.All() {
		b, _ := json.Marshal(entry.ContextMap())
		text := entry.Message + " " + string(b)
		for _, s := range append(pii, fakegraph.DefaultToken) {
			if strings.Contains(text, s) {
				e.t.Errorf("log entry %q holds %q: %s", entry.Message, s, text)
			}
		}
	}
}

func (e *env) waitFor(d time.Duration, what string, cond func() bool) {
	e.t.Helper()
	poll.CheckFor(e.t, d, func() error { return poll.Until(what, cond()) })
}

// touch records an ad click: WhatsApp with a ctwa_clid, the others a referral.
func (e *env) touch(channel, business, user string) {
	e.t.Helper()
	t := attribution.Touch{Key: attribution.Key{Channel: channel, BusinessID: business, UserID: user},
		AdID: "120200000000000001", SourceType: "ad", Time: time.Now()}
	if channel == attribution.WhatsApp {
		t.ClickID = "clid-" + user
	}
	if err := e.store.Record(context.Background(), []attribution.Touch{t}); err != nil {
		e.t.Fatal(err)
	}
}

// conv is a conversion message happening now.
func conv(id, channel, business, user string) []byte {
	return fmt.Appendf(nil, `{"event_id":%q,"event_name":"Purchase","event_time":%d,"channel":%q,"business_id":%q,"user_id":%q,"custom_data":{"currency":"USD","value":12.5}}`,
		id, time.Now().Unix(), channel, business, user)
}

// publish stores data on conversions.<channel> with Nats-Msg-Id msgID.
func (e *env) publish(channel string, data []byte, msgID string) {
	e.t.Helper()
	m := nats.NewMsg("conversions." + channel)
	m.Data = data
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		e.t.Fatal(err)
	}
}

// publishRetry publishes like publish, retrying while NATS restarts; the
// Nats-Msg-Id keeps a retried publish from being stored twice.
func (e *env) publishRetry(channel string, data []byte, msgID string) {
	e.t.Helper()
	m := nats.NewMsg("conversions." + channel)
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	e.waitFor(20*time.Second, "publish to succeed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := e.js.PublishMsg(ctx, m)
		return err == nil
	})
}

// settled waits until the consumer has nothing pending or unacked: every
// message reached its outcome, so nothing more can be sent.
func (e *env) settled(d time.Duration) {
	e.t.Helper()
	// A message moves between CONVERSIONS and PARKED (paused businesses)
	// by a publish first and an ack or delete after, so it is always in one
	// of them; quiet twice in a row means nothing is on its way.
	quiet := 0
	e.waitFor(d, "all messages acked, none parked", func() bool {
		if e.parked() == 0 && e.conversionsPending() == 0 && e.parked() == 0 {
			quiet++
		} else {
			quiet = 0
		}
		return quiet >= 2
	})
}

// conversionsPending is what the CONVERSIONS consumer has not delivered or
// not acked (-1 when unknown).
func (e *env) conversionsPending() int {
	c, err := e.js.Consumer(context.Background(), sender.StreamConversions, sender.ConsumerName)
	if err != nil {
		return -1
	}
	info, err := c.Info(context.Background())
	if err != nil {
		return -1
	}
	return int(info.NumPending) + info.NumAckPending
}

// parked is how many messages wait in PARKED (-1 when unknown).
func (e *env) parked() int {
	st, err := e.js.Stream(context.Background(), sender.StreamParked)
	if err != nil {
		return -1
	}
	info, err := st.Info(context.Background())
	if err != nil {
		return -1
	}
	return int(info.State.Msgs)
}

// sentOnce checks that each id reached the fake exactly once and nothing
// else did.
func (e *env) sentOnce(ids ...string) {
	e.t.Helper()
	counts := e.fake.CountByEventID()
	for _, id := range ids {
		if counts[id] != 1 {
			e.t.Errorf("event %s reached the fake %d times; want 1", id, counts[id])
		}
		delete(counts, id)
	}
	for id, n := range counts {
		e.t.Errorf("unexpected event %s reached the fake %d times", id, n)
	}
}

// waitSent waits until each id reached the fake.
func (e *env) waitSent(d time.Duration, ids ...string) {
	e.t.Helper()
	e.waitFor(d, fmt.Sprintf("%d events at the fake", len(ids)), func() bool {
		counts := e.fake.CountByEventID()
		for _, id := range ids {
			if counts[id] == 0 {
				return false
			}
		}
		return true
	})
}
