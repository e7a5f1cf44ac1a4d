package test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// Scenario 5: duplicates at high rate. Every webhook delivery is posted
// three times at once (Meta redelivers); every conversion is published five
// times with different Nats-Msg-Ids (so JetStream keeps every copy and only
// the sender can deduplicate), with different event_times, shuffled and
// concurrently, plus a same-id repeat that JetStream drops. Many workers and
// small batches put copies in the same batch and in concurrent ones. Later,
// after everything was sent, one more copy of each arrives. Meta must see
// each event_id exactly once and nothing may be dead-lettered.
func TestFaultDuplicates(t *testing.T) {
	r := newFaultRig(t, faultOptions{SenderEnv: []string{"WORKERS=4", "BATCH_SIZE=25"}})
	mark := r.mark()
	const n, copies = 400, 5
	var (
		convs      []faultConv
		deliveries [][]byte
	)
	for i := 0; len(convs) < n; i++ {
		cs := r.convs(8, faultChannels[i%len(faultChannels)], nil)
		convs = append(convs, cs...)
		deliveries = append(deliveries, faultWebhook(cs, time.Now()))
	}
	var posts [][]byte
	for _, d := range deliveries {
		posts = append(posts, d, d, d)
	}
	faultParallel(t, 12, len(posts), func(i int) error {
		if code := r.post(posts[i]); code != 200 {
			return fmt.Errorf("duplicate delivery %d = %d; want 200", i, code)
		}
		return nil
	})

	type copyOf struct {
		c     faultConv
		msgID string
		at    time.Time
	}
	var pubs []copyOf
	now := time.Now()
	for _, c := range convs {
		ids := []string{c.EventID}
		for k := 2; k <= copies; k++ {
			ids = append(ids, fmt.Sprintf("%s#%d", c.EventID, k))
		}
		r.expect(faultWant{EventID: c.EventID, MsgIDs: ids})
		for k, id := range ids {
			pubs = append(pubs, copyOf{c, id, now.Add(-time.Duration(k) * time.Second)})
		}
		pubs = append(pubs, copyOf{c, c.EventID, now}) // same Nats-Msg-Id: dropped by JetStream
	}
	rand.Shuffle(len(pubs), func(i, j int) { pubs[i], pubs[j] = pubs[j], pubs[i] })
	faultParallel(t, 8, len(pubs), func(i int) error {
		p := pubs[i]
		return r.publish(p.c.subject(), p.msgID, p.c.conversion(p.at))
	})
	stream, err := r.js.Stream(t.Context(), "CONVERSIONS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.Msgs; got != n*copies {
		t.Errorf("CONVERSIONS holds %d messages; want %d (every copy with its own Nats-Msg-Id, none of the same-id repeats)", got, n*copies)
	}
	account(t, r, r.since(mark), faultAccountOpts{})

	// Late copies, long after Meta accepted the originals.
	faultParallel(t, 8, len(convs), func(i int) error {
		c := convs[i]
		r.expect(faultWant{EventID: c.EventID, MsgIDs: []string{c.EventID + "#late"}})
		return r.publish(c.subject(), c.EventID+"#late", c.conversion(time.Now()))
	})
	account(t, r, r.since(mark), faultAccountOpts{})
}

// faultParallel runs do(0..n-1) on workers goroutines and fails t with the
// errors (at most 5 shown).
func faultParallel(t *testing.T, workers, n int, do func(i int) error) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next = make(chan int)
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := do(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if i == 5 {
			t.Errorf("... and %d more errors", len(errs)-5)
			break
		}
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
}
