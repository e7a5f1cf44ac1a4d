package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/conversion"
)

// ConvGen makes conversion messages (docs/contract.md) for the
// contexts a BodyGen's webhooks would have stored: conversion i of a batch
// belongs to the user of sequence number i mod Contexts.
type ConvGen struct {
	Bodies   *BodyGen
	Mix      Mix
	Contexts int // contexts seeded, sequence numbers 0..Contexts-1
}

// EventID returns the event_id of conversion i of the batch prefix names.
// The index is the last dash-separated part, so a Tracker can map what the
// fake Graph receives back to when it was published.
func EventID(prefix string, i int) string { return prefix + strconv.Itoa(i) }

// Message returns conversion i of the batch prefix names, published at now,
// as a NATS message on conversions.<channel> (or subjectBase.<channel>)
// with Nats-Msg-Id set to its event_id, as publishers should. It is a
// conversion.Conversion marshalled as publishers would, so the load is held
// to the same contract as real messages.
func (c *ConvGen) Message(subjectBase, prefix string, i int, now time.Time) *nats.Msg {
	seq := uint64(i % c.Contexts)
	ch := c.Mix.Channel(seq)
	business, _ := c.Bodies.Business(ch, seq)
	cd, err := json.Marshal(purchaseData{Currency: "USD", Value: 10 + float64(i%9000)/100, OrderID: strconv.Itoa(i)})
	if err != nil {
		panic(err) // a fixed struct of strings and a finite number always marshals
	}
	conv := conversion.Conversion{
		EventID: EventID(prefix, i), EventName: conversion.Purchase, EventTime: now.Unix(), Channel: ch,
		BusinessID: business, UserID: c.Bodies.User(ch, seq), CustomData: cd,
	}
	data, err := json.Marshal(conv)
	if err != nil {
		panic(err)
	}
	m := nats.NewMsg(subjectBase + "." + ch)
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, conv.EventID)
	return m
}

// purchaseData is the custom_data of a generated Purchase.
type purchaseData struct {
	Currency string  `json:"currency"`
	Value    float64 `json:"value"`
	OrderID  string  `json:"order_id"`
}

// Seed records the contexts conversions refer to, through the store as
// ingest would (one round trip per 100 touches).
func (c *ConvGen) Seed(ctx context.Context, store *attribution.Store) error {
	ts, err := Touches(c.Bodies, c.Mix, 0, c.Contexts, time.Now())
	if err != nil {
		return err
	}
	return RecordAll(ctx, store, ts, 100, 8)
}

// BusinessOf returns the business of conversion i (Message's).
func (c *ConvGen) BusinessOf(i int) string {
	seq := uint64(i % c.Contexts)
	b, _ := c.Bodies.Business(c.Mix.Channel(seq), seq)
	return b
}

// Businesses returns every business id conversions can name.
func (c *ConvGen) Businesses() []string {
	seen := map[string]bool{}
	var out []string
	for seq := range uint64(min(c.Contexts, 200000)) {
		b, _ := c.Bodies.Business(c.Mix.Channel(seq), seq)
		if !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	return out
}

// PublishAll publishes msgs with at most 4096 acknowledgements outstanding
// and returns when JetStream has acknowledged all of them.
func PublishAll(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg) error {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := js.PublishMsgAsync(m, jetstream.WithStallWait(30*time.Second))
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		futures = append(futures, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish: %w", err)
		}
	}
	return nil
}

// Tracker follows one batch of conversions to the fake Graph: which arrived,
// how often, and how long after they were due to be published.
type Tracker struct {
	prefix string
	due    []atomic.Int64 // Unix ns when conversion i was due (0: not tracked for latency)
	done   chan struct{}

	mu       sync.Mutex
	seen     []bool
	received int
	dups     int
	latency  Histogram
	last     time.Time
}

// NewTracker tracks conversions 0..n-1 whose event ids start with prefix.
func NewTracker(prefix string, n int) *Tracker {
	return &Tracker{prefix: prefix, due: make([]atomic.Int64, n), seen: make([]bool, n), done: make(chan struct{})}
}

// SetDue records when conversion i was due to be published; call it before
// publishing.
func (t *Tracker) SetDue(i int, at time.Time) { t.due[i].Store(at.UnixNano()) }

// Accept notes event ids the fake Graph accepted at now. Ids of other
// batches are ignored.
func (t *Tracker) Accept(now time.Time, ids ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		rest, ok := strings.CutPrefix(id, t.prefix)
		i, err := strconv.Atoi(rest)
		if !ok || err != nil || i < 0 || i >= len(t.seen) {
			continue
		}
		if t.seen[i] {
			t.dups++
			continue
		}
		t.seen[i] = true
		t.received++
		t.last = now
		if d := t.due[i].Load(); d != 0 {
			t.latency.Record(now.Sub(time.Unix(0, d)))
		}
		if t.received == len(t.seen) {
			close(t.done)
		}
	}
}

// Skip stops waiting for conversion i (its business hangs, say): it counts
// as received, without a latency, and arriving later as a duplicate.
func (t *Tracker) Skip(i int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i < 0 || i >= len(t.seen) || t.seen[i] {
		return
	}
	t.seen[i] = true
	t.received++
	if t.received == len(t.seen) {
		close(t.done)
	}
}

// Done is closed when every conversion has arrived.
func (t *Tracker) Done() <-chan struct{} { return t.done }

// TrackerStats is a snapshot of a Tracker.
type TrackerStats struct {
	Received, Dups, Missing int
	Last                    time.Time // when the last new conversion arrived
	Latency                 Histogram
}

// Stats returns the tracker's counts and latency histogram.
func (t *Tracker) Stats() TrackerStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TrackerStats{Received: t.received, Dups: t.dups, Missing: len(t.seen) - t.received, Last: t.last, Latency: t.latency}
}
