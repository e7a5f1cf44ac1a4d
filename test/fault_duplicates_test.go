package test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Scenario 5: duplicates at high rate. Every webhook delivery is posted
// three times at once (Meta redelivers); every conversion is published five
// times with different Nats-Msg-Ids (so JetStream keeps every copy and only
// the sender can deduplicate), with different event_times, shuffled and
// concurrently (WhatsApp ones naming the business by WABA id or by
// phone_number_id), plus a same-id repeat that JetStream drops. Many workers and
// small batches put copies in the same batch and in concurrent ones. Later,
// after everything was sent, one more copy of each arrives. Meta must see
// each event_id exactly once and nothing may be dead-lettered.
func TestFaultDuplicates(t *testing.T) {
	t.Parallel() // own ports, dirs and servers (newFaultRig)
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
	// An older click of each WhatsApp conversation, redelivered late and
	// in any order: the latest click must stay the one reported.
	for i := 0; i < len(convs); i += 8 {
		if convs[i].Channel != "whatsapp" {
			continue
		}
		stale := append([]faultConv(nil), convs[i:i+8]...)
		for j := range stale {
			stale[j].Clid = "ARAstale-" + stale[j].Clid
		}
		posts = append(posts, faultWebhook(stale, time.Now().Add(-time.Hour)))
	}
	r.rnd.Shuffle(len(posts), func(i, j int) { posts[i], posts[j] = posts[j], posts[i] })
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
	r.rnd.Shuffle(len(pubs), func(i, j int) { pubs[i], pubs[j] = pubs[j], pubs[i] })
	faultParallel(t, 8, len(pubs), func(i int) error {
		p := pubs[i]
		// WhatsApp copies name the business by WABA id or phone_number_id
		// at random: still one event.
		return r.publish(p.c.subject(), p.msgID, p.c.conversionNaming(p.at, r.rnd.IntN(2) == 0))
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
	faultLatestClicks(t, r, convs)

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

// faultLatestClicks checks that each WhatsApp event at Meta carries the
// ctwa_clid of its conversation's latest click.
func faultLatestClicks(t *testing.T, r *faultRig, convs []faultConv) {
	t.Helper()
	want := map[string]string{}
	for _, c := range convs {
		if c.Channel == "whatsapp" {
			want[c.EventID] = c.Clid
		}
	}
	checked := 0
	for _, ev := range r.graph.Events() {
		clid, ok := want[ev.EventID]
		if !ok {
			continue
		}
		var e struct {
			UserData struct {
				Clid string `json:"ctwa_clid"`
			} `json:"user_data"`
		}
		if err := json.Unmarshal(ev.Raw, &e); err != nil || e.UserData.Clid != clid {
			t.Errorf("%s reached Meta with ctwa_clid %q (%v); want the latest click's %q", ev.EventID, e.UserData.Clid, err, clid)
		}
		checked++
	}
	if checked != len(want) {
		t.Errorf("checked %d WhatsApp events; want %d", checked, len(want))
	}
}
