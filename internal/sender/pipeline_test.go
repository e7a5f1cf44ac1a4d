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
	for i := range 30 { // more than one request's worth at a time, and more than its slots
		id := "hung-" + strconv.Itoa(i)
		e.publish("instagram", conv(id, "instagram", "hung", "igsid-h"), id)
	}
	e.waitFor(10*time.Second, "the hung business's requests in flight", func() bool { return e.fake.Hanging() == 2 })
	var ids []string
	for i := range 20 {
		id := "fine-" + strconv.Itoa(i)
		ids = append(ids, id)
		e.publish("instagram", conv(id, "instagram", "fine", "igsid-f"), id)
	}
	e.waitSent(20*time.Second, ids...)
	if n := e.fake.Hanging(); n != 2 {
		t.Fatalf("%d requests hang; want the hung business's 2 (MAX_INFLIGHT_PER_BUSINESS), still hanging", n)
	}
	e.sentOnce(ids...)
	e.fake.ClearFaults() // let the hung requests end, so that the sender can stop
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
