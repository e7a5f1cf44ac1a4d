package sender_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// A business whose requests hang holds only its own messages: another
// business's events, published after the hung requests went out, reach Meta
// while those requests still hang. (Before the pipeline, a fetched batch
// settled only when its slowest request ended: they waited out
// HTTP_TIMEOUT.)
func TestHungBusinessDoesNotHoldOthers(t *testing.T) {
	fo := fakegraph.Options{Datasets: map[string]string{"hung": "111", "fine": "222"}}
	e := newEnvGraph(t, fo, func(c *sender.Config) {
		c.Workers = 1
		c.BatchSize = 10
		c.MaxInflightPerBusiness = 2
		c.Linger = 0                // each fetch of 10 its own request, to fill the business's slots
		c.HTTPTimeout = time.Minute // the hang outlasts the test
		c.SendLease = 2 * time.Minute
		c.ShutdownTimeout = time.Minute
	}, nil)
	e.fake.HangDataset("111")
	e.touch(attribution.Instagram, "hung", "igsid-h")
	e.touch(attribution.Instagram, "fine", "igsid-f")
	e.publishInstagram("hung", "igsid-h", 30) // more than one request's worth at a time, and more than its slots
	e.waitFor(10*time.Second, "the hung business's requests in flight", func() bool { return e.fake.Hanging() == 2 })
	ids := e.publishInstagram("fine", "igsid-f", 20)
	e.waitSent(20*time.Second, ids...)
	if n := e.fake.Hanging(); n != 2 {
		t.Fatalf("%d requests hang; want the hung business's 2 (MAX_INFLIGHT_PER_BUSINESS), still hanging", n)
	}
	e.sentOnce(ids...)
	e.fake.ClearFaults() // let the hung requests end, so that the sender can stop
}

// A hung business cannot fill MAX_ACK_PENDING: once its queue has waited
// heldStuck with no request started, its events past MAX_HELD_PER_BUSINESS
// are parked, and JetStream delivers the other business's events again.
// Here the hung business's 40 messages fill the consumer's MAX_ACK_PENDING
// (40), so without the cap the other business's events are never even
// delivered; nothing is lost (the parked ones wait in PARKED).
func TestHungBusinessCannotFillMaxAckPending(t *testing.T) {
	fo := fakegraph.Options{Datasets: map[string]string{"hung": "111", "fine": "222"}}
	e := newEnvGraph(t, fo, func(c *sender.Config) {
		c.Workers = 1
		c.BatchSize = 10
		c.MaxInflightPerBusiness = 1
		c.Linger = 0
		c.MaxAckPending = 40
		c.MaxHeldPerBusiness = 10
		c.HTTPTimeout = time.Minute // the hang outlasts the test
		c.SendLease = 2 * time.Minute
		c.ShutdownTimeout = time.Minute
	}, nil)
	e.fake.HangDataset("111")
	e.touch(attribution.Instagram, "hung", "igsid-h")
	e.touch(attribution.Instagram, "fine", "igsid-f")
	e.publishInstagram("hung", "igsid-h", 40)
	e.waitFor(10*time.Second, "the hung business's request in flight", func() bool { return e.fake.Hanging() == 1 })
	ids := e.publishInstagram("fine", "igsid-f", 20)
	e.waitSent(30*time.Second, ids...)
	e.sentOnce(ids...)
	if n := e.fake.Hanging(); n != 1 {
		t.Errorf("%d requests hang; want the hung business's one, still hanging", n)
	}
	// It held at most 10 (its request and its queue), so at least 30 were
	// parked. Counted as they are parked: the unpark loop's probes move some
	// back and forth, so what PARKED holds at one moment says less.
	if n := e.metric("sender_conversions_total", map[string]string{"outcome": "paused"}); n < 30 {
		t.Errorf("%v messages parked; want at least the 30 past MAX_HELD_PER_BUSINESS (10)", n)
	}
	e.fake.ClearFaults() // let the hung request end, so that the sender can stop
}

// The same when the hung business's requests time out: each one's events
// wait out their lease (in doubt), handed back for SEND_LEASE, and count
// against MAX_ACK_PENDING all that time. Past MAX_HELD_PER_BUSINESS they are
// parked instead, so the other business's events are still delivered.
func TestTimedOutBusinessCannotFillMaxAckPending(t *testing.T) {
	fo := fakegraph.Options{Datasets: map[string]string{"hung": "111", "fine": "222"}}
	e := newEnvGraph(t, fo, func(c *sender.Config) {
		c.Workers = 1
		c.BatchSize = 10
		c.MaxInflightPerBusiness = 1
		c.Linger = 0
		c.MaxAckPending = 40
		c.MaxHeldPerBusiness = 10
		c.HTTPTimeout = 500 * time.Millisecond // each request is in doubt soon
		c.RetryMax = 500 * time.Millisecond    // and the business tries again soon
		c.SendLease = 2 * time.Minute          // what is in doubt waits longer than the test
		c.ShutdownTimeout = time.Second
		c.PauseInterval = time.Hour // one unpark probe (10) in the test, not one every few milliseconds
	}, nil)
	e.fake.HangDataset("111")
	e.touch(attribution.Instagram, "hung", "igsid-h")
	e.touch(attribution.Instagram, "fine", "igsid-f")
	e.publishInstagram("hung", "igsid-h", 60)
	// Without the cap its timed-out requests' events, handed back for the
	// lease, fill MAX_ACK_PENDING (40) and nothing more is delivered. With
	// it, all but its cap (10) are parked, less the probe of 10 the unpark
	// loop sends back.
	e.waitFor(30*time.Second, "the hung business's events past the cap parked", func() bool { return e.parked() >= 60-10-10 })
	ids := e.publishInstagram("fine", "igsid-f", 20)
	e.waitSent(30*time.Second, ids...)
	e.fake.ClearFaults()
}

// Copies of one event fetched apart (a duplicate publish under another
// Nats-Msg-Id) meet in their dataset's queue and so in one request: the
// event goes to Meta once, and both messages are settled.
func TestCopiesInOneRequestSentOnce(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) {
		c.Workers = 1
		c.BatchSize = 1                   // one fetch per copy
		c.Linger = 500 * time.Millisecond // both wait in the queue for one request
	})
	e.touch(attribution.Instagram, "ig1", "igsid-1")
	data := conv("twice-1", "instagram", "ig1", "igsid-1")
	e.publish("instagram", data, "copy-a")
	e.publish("instagram", data, "copy-b")
	e.waitSent(10*time.Second, "twice-1")
	e.settled(10 * time.Second)
	e.sentOnce("twice-1")
	if n := len(e.dlq()); n != 0 {
		t.Errorf("%d dead letters; want none", n)
	}
}

// publishInstagram publishes n Instagram conversions of business for user,
// with event ids "<business>-0" … and returns them.
func (e *env) publishInstagram(business, user string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = business + "-" + strconv.Itoa(i)
		e.publish("instagram", conv(ids[i], "instagram", business, user), ids[i])
	}
	return ids
}
