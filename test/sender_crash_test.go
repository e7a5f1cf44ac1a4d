package test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// crashRig is the sender binary's world: real redis-server, JetStream and the
// fake Graph API.
type crashRig struct {
	t     *testing.T
	nats  *natstest.Server
	redis *redistest.Server
	fake  *fakegraph.Server
	js    jetstream.JetStream
	env   []string
}

func newCrashRig(t *testing.T) *crashRig {
	t.Helper()
	binary(t, "sender") // build first (and skip under -short)
	r := &crashRig{t: t, nats: natstest.RunJetStream(t), redis: redistest.Start(t), fake: fakegraph.New(t, fakegraph.Options{})}
	js, err := jetstream.New(r.nats.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	r.js = js
	r.env = []string{
		"NATS_URL=" + r.nats.ClientURL(), "REDIS_URL=" + r.redis.URL(),
		"CAPI_ACCESS_TOKEN=" + fakegraph.DefaultToken, "GRAPH_API_BASE=" + r.fake.URL(),
		"METRICS_ADDR=127.0.0.1:0", "LOG_LEVEL=debug", "WORKERS=1", "BATCH_SIZE=5",
		// Short waits: an unacked message comes back after 2s, a claim lasts 3s.
		"ACK_WAIT=2s", "SEND_LEASE=3s", "HTTP_TIMEOUT=1s",
	}
	store := attribution.NewStore(r.redis.Client(t), 0)
	if err := store.Record(context.Background(), []attribution.Touch{{
		Key:     attribution.Key{Channel: attribution.WhatsApp, BusinessID: "104222339999001", UserID: "16315551234"},
		ClickID: "clid-crash", AdID: "1", Time: time.Now(),
	}}); err != nil {
		t.Fatal(err)
	}
	return r
}

var readyRE = regexp.MustCompile(`"msg":"sender started"`)

// startSender runs the binary with extra env and waits until it consumes.
func (r *crashRig) startSender(extra ...string) *proc {
	r.t.Helper()
	p := start(r.t, "sender", "", append(append([]string(nil), r.env...), extra...))
	p.waitOutput(readyRE, 30*time.Second)
	return p
}

func (r *crashRig) publish(n int) []string {
	r.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "crash-" + strconv.Itoa(i)
		m := nats.NewMsg("conversions.whatsapp")
		m.Header.Set(jetstream.MsgIDHeader, ids[i])
		m.Data = fmt.Appendf(nil, `{"event_id":%q,"event_name":"OrderCreated","event_time":%d,"channel":"whatsapp","business_id":"104222339999001","user_id":"16315551234"}`,
			ids[i], time.Now().Unix())
		if _, err := r.js.PublishMsg(context.Background(), m); err != nil {
			r.t.Fatal(err)
		}
	}
	return ids
}

// settled waits until the sender's consumer has nothing pending or unacked.
func (r *crashRig) settled(d time.Duration) {
	r.t.Helper()
	waitFor(r.t, d, "all conversions acked", func() bool {
		c, err := r.js.Consumer(context.Background(), "CONVERSIONS", "sender")
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// deadLetters returns reason per event id of the stored dead letters.
func (r *crashRig) deadLetters() map[string]string {
	r.t.Helper()
	s, err := r.js.Stream(context.Background(), "DLQ")
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]string{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			r.t.Fatal(err)
		}
		out[m.Header.Get("Ctm-Event-Id")] = m.Header.Get("Ctm-Dlq-Reason")
	}
	return out
}

// restartAndCheckSentOnce starts a sender, waits until the stream is
// settled, and checks that each of ids reached the fake exactly once and
// that nothing was dead-lettered.
func (r *crashRig) restartAndCheckSentOnce(ids []string) {
	r.t.Helper()
	r.startSender()
	r.settled(60 * time.Second)
	counts := r.fake.CountByEventID()
	for _, id := range ids {
		if counts[id] != 1 {
			r.t.Errorf("%s reached the fake %d times; want 1", id, counts[id])
		}
	}
	if dl := r.deadLetters(); len(dl) != 0 {
		r.t.Errorf("dead letters %v; want none", dl)
	}
}

func exited(p *proc) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// (a) The sender dies between MarkSent and the ack (CTM_FAILPOINT, a
// test-only hook): the restarted sender finds those events sent and acks
// them as duplicates. Every event reaches Meta exactly once; no dead letters.
func TestSenderCrashAfterMarkSent(t *testing.T) {
	r := newCrashRig(t)
	p := r.startSender("CTM_FAILPOINT=after-mark-sent")
	ids := r.publish(12)
	waitFor(t, 30*time.Second, "the sender to kill itself at the failpoint", func() bool { return exited(p) })
	if n := len(r.fake.Events()); n == 0 {
		t.Fatalf("no events at the fake before the failpoint")
	}
	r.restartAndCheckSentOnce(ids)
}

// (a2) The sender dies after claiming a batch, before posting it
// (CTM_FAILPOINT=before-post): Meta never got the events, and the restarted
// sender sends each of them once, when the dead sender's lease has run out,
// rather than leave them in doubt.
func TestSenderCrashBeforePost(t *testing.T) {
	r := newCrashRig(t)
	p := r.startSender("CTM_FAILPOINT=before-post")
	ids := r.publish(12)
	waitFor(t, 30*time.Second, "the sender to kill itself at the failpoint", func() bool { return exited(p) })
	if n := len(r.fake.Events()); n != 0 {
		t.Fatalf("%d events at the fake before the post; want 0", n)
	}
	r.restartAndCheckSentOnce(ids) // unposted claims are not in doubt
}

// (b) The sender is killed while Meta accepts its request, before the 200
// is written: Meta has the events, the sender never learnt it. The restarted
// sender must not resend them: they end as dead letters in_doubt.
func TestSenderKilledDuringPost(t *testing.T) {
	r := newCrashRig(t)
	var (
		mu     sync.Mutex
		victim *proc
		killed []string
	)
	r.fake.OnAccept(func(evs []fakegraph.Event) {
		mu.Lock()
		defer mu.Unlock()
		if victim == nil || killed != nil {
			return
		}
		for _, ev := range evs {
			killed = append(killed, ev.EventID)
		}
		victim.Kill()
	})
	p := r.startSender()
	mu.Lock()
	victim = p
	mu.Unlock()
	ids := r.publish(1)
	waitFor(t, 30*time.Second, "the sender to be killed during the post", func() bool { return exited(p) })
	r.fake.OnAccept(nil)

	r.startSender()
	r.settled(60 * time.Second)
	if n := r.fake.CountByEventID()[ids[0]]; n != 1 {
		t.Fatalf("%s reached the fake %d times; want exactly 1 (the killed post)", ids[0], n)
	}
	if reason := r.deadLetters()[ids[0]]; reason != "in_doubt" {
		t.Fatalf("%s dead letter reason %q; want in_doubt", ids[0], reason)
	}
}

// (c) The sender is SIGKILLed with requests of many businesses in flight
// (a slow Graph, several requests per business, each business its own
// dataset): one request is being accepted, others are on the wire. After a
// restart nothing is lost and nothing is sent twice; only events whose
// request may have reached Meta end in_doubt: ones a request carried to the
// fake, or ones of a business whose requests were going out at the kill
// (the sender marks a post just before writing it, so a kill in between
// leaves a request that never left in doubt, by design).
func TestSenderKilledWithManyBusinessesInFlight(t *testing.T) {
	r := newCrashRig(t)
	const businesses, perBusiness = 40, 6
	store := attribution.NewStore(r.redis.Client(t), 0)
	var touches []attribution.Touch
	for b := range businesses {
		touches = append(touches, attribution.Touch{
			Key:     attribution.Key{Channel: attribution.WhatsApp, BusinessID: strconv.Itoa(104222330000000 + b), UserID: "16315551234"},
			ClickID: "clid-many", AdID: "1", Time: time.Now(),
		})
	}
	if err := store.Record(context.Background(), touches); err != nil {
		t.Fatal(err)
	}
	r.fake.RecordArrivals()
	r.fake.Latency(300 * time.Millisecond)
	var (
		mu       sync.Mutex
		victim   *proc
		accepted int
	)
	r.fake.OnAccept(func(evs []fakegraph.Event) {
		mu.Lock()
		defer mu.Unlock()
		if accepted++; accepted == 10 && victim != nil {
			victim.Kill() // while this request is accepted and others wait
		}
	})
	p := r.startSender("LINGER=0", "BATCH_SIZE=20", "MAX_INFLIGHT_PER_BUSINESS=2", "HTTP_TIMEOUT=2s", "SHUTDOWN_TIMEOUT=2s")
	mu.Lock()
	victim = p
	mu.Unlock()
	var ids []string
	for i := range perBusiness {
		for b := range businesses {
			id := fmt.Sprintf("many-%d-%d", b, i)
			ids = append(ids, id)
			m := nats.NewMsg("conversions.whatsapp")
			m.Header.Set(jetstream.MsgIDHeader, id)
			m.Data = fmt.Appendf(nil, `{"event_id":%q,"event_name":"OrderCreated","event_time":%d,"channel":"whatsapp","business_id":"%d","user_id":"16315551234"}`,
				id, time.Now().Unix(), 104222330000000+b)
			if _, err := r.js.PublishMsg(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, 30*time.Second, "the sender to be killed with requests in flight", func() bool { return exited(p) })
	arrivedBefore := r.fake.Arrivals()
	postingBiz := map[string]bool{} // businesses with a request at the fake before the kill
	for id := range arrivedBefore {
		if b, _, ok := strings.Cut(strings.TrimPrefix(id, "many-"), "-"); ok {
			postingBiz[b] = true
		}
	}
	r.fake.OnAccept(nil)
	r.fake.Latency(0)

	r.startSender()
	r.settled(60 * time.Second)
	counts, dead := r.fake.CountByEventID(), r.deadLetters()
	var inDoubt int
	for _, id := range ids {
		switch reason, ok := dead[id]; {
		case counts[id] > 1:
			t.Errorf("%s reached Meta %d times; want at most 1", id, counts[id])
		case ok && reason != "in_doubt":
			t.Errorf("%s dead-lettered %s; want sent, or in_doubt", id, reason)
		case ok && arrivedBefore[id] == 0 && !postingBiz[strings.Split(id, "-")[1]]:
			t.Errorf("%s in_doubt although its business had no request out before the kill", id)
		case ok:
			inDoubt++
		case counts[id] != 1:
			t.Errorf("%s lost: neither at Meta nor dead-lettered", id)
		}
	}
	if inDoubt == 0 {
		t.Error("no event in doubt: the kill did not happen with a request in flight")
	}
	t.Logf("%d events, %d in doubt, %d carried to the fake before the kill", len(ids), inDoubt, len(arrivedBefore))
}
