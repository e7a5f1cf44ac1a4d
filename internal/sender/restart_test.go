package sender_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// publishStream publishes n conversions for one attributed conversation,
// calling midway once half are at the fake.
func publishStream(e *env, prefix string, n int, midway func()) []string {
	e.t.Helper()
	e.touch(attribution.Messenger, "p1", "psid-1")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + strconv.Itoa(i)
	}
	for _, id := range ids[:n/2] {
		e.publish("messenger", conv(id, "messenger", "p1", "psid-1"), id)
	}
	e.waitFor(20*time.Second, "first events at the fake", func() bool { return len(e.fake.Events()) >= n/4 })
	midway()
	for _, id := range ids[n/2:] {
		e.publishRetry("messenger", conv(id, "messenger", "p1", "psid-1"), id)
	}
	return ids
}

// Redis killed (SIGKILL) and restarted mid-run, with its append-only file:
// the sender hands work back while Redis is away and then carries on;
// nothing is lost and nothing doubled.
func TestRedisRestartMidRun(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) { c.BatchSize = 20 },
		"--appendonly", "yes", "--appendfsync", "always")
	e.fake.Latency(5 * time.Millisecond)
	ids := publishStream(e, "rr-", 400, func() { e.redis.Restart() })
	e.settled(60 * time.Second)
	e.sentOnce(ids...)
	if letters := e.dlq(); len(letters) != 0 {
		t.Errorf("%d dead letters (first %s %s); want none", len(letters), letters[0].Reason, letters[0].Error)
	}
}

// NATS restarted mid-run (acks in flight may be lost): redeliveries find the
// events sent and ack them as duplicates; nothing lost, nothing doubled.
func TestNATSRestartMidRun(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) {
		c.BatchSize = 20
		c.AckWait = 2 * time.Second
	})
	e.fake.Latency(5 * time.Millisecond)
	ids := publishStream(e, "nr-", 400, func() { e.nats.Restart() })
	e.settled(60 * time.Second)
	e.sentOnce(ids...)
	if letters := e.dlq(); len(letters) != 0 {
		t.Errorf("%d dead letters (first %s %s); want none", len(letters), letters[0].Reason, letters[0].Error)
	}
}

// SIGTERM with a request in flight: the batch finishes within
// SHUTDOWN_TIMEOUT and is acked; a new sender finds nothing left to do.
func TestGracefulShutdownFinishesBatch(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) { c.Workers = 1 })
	e.touch(attribution.Instagram, "ig1", "igsid-1")
	e.fake.Latency(500 * time.Millisecond)
	var ids []string
	for i := range 10 {
		id := "gs-" + strconv.Itoa(i)
		ids = append(ids, id)
		e.publish("instagram", conv(id, "instagram", "ig1", "igsid-1"), id)
	}
	e.waitFor(10*time.Second, "a request in flight", func() bool { return e.fake.Requests() > 0 })
	e.stop()
	e.fake.Latency(0)
	e.restart()
	e.settled(20 * time.Second)
	e.sentOnce(ids...)
	if n := len(e.dlq()); n != 0 {
		t.Errorf("%d dead letters; want none", n)
	}
}

// SIGTERM with a request that outlasts SHUTDOWN_TIMEOUT (and so
// HTTP_TIMEOUT, which it may not be shorter than): the request is cut off
// after it was written, so Meta may have it. The events are handed back,
// their claims kept; the next sender dead-letters them as in_doubt instead
// of sending them again.
func TestShutdownTimeoutHandsBack(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) {
		c.Workers = 1
		c.HTTPTimeout = 200 * time.Millisecond
		c.ShutdownTimeout = 200 * time.Millisecond
	})
	e.touch(attribution.Instagram, "ig1", "igsid-1")
	e.fake.Latency(3 * time.Second) // longer than SHUTDOWN_TIMEOUT; short because the fake only notices a gone client after it
	e.publish("instagram", conv("cut-1", "instagram", "ig1", "igsid-1"), "cut-1")
	e.waitFor(10*time.Second, "a request in flight", func() bool { return e.fake.Requests() > 0 })
	e.stop()
	e.fake.Latency(0)
	e.restart()
	letters := e.waitDLQ(20*time.Second, 1)
	if letters[0].Reason != sender.ReasonInDoubt || letters[0].EventID != "cut-1" {
		t.Fatalf("dead letter = %+v; want cut-1 in_doubt", letters[0])
	}
	e.settled(10 * time.Second)
	// Whether the fake still took the cut-off request is its business; the
	// sender never sent the event again.
	if n := e.fake.CountByEventID()["cut-1"]; n > 1 {
		t.Fatalf("cut-1 reached the fake %d times", n)
	}
}
