package test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
)

// The scale-out proof (issue 15): the design says ingest and sender are
// stateless and scale out on a NATS cluster with R3 streams and a Redis
// Cluster. scaleRig runs exactly that on one machine: three in-process
// nats-server instances routed into one cluster, a Redis Cluster of three
// redis-server masters (AOF, fsync always, so a master killed and restarted
// on its port keeps every acknowledged write), the fake Graph API answering
// after 200 ms, two ingest processes and senders on the one durable
// consumer, all with STREAM_REPLICAS=3.
type scaleRig struct {
	*faultRig
	nats     []*natstest.Server
	redis    []*redistest.Server
	natsURL  string
	redisURL string

	smu     sync.Mutex
	senders []*proc
	ingests []*proc
	ingEnvs [][]string
}

// newScaleRig starts the clusters, the fake Graph and two ingests; senders
// are started by startSenders.
func newScaleRig(t *testing.T, senderEnv ...string) *scaleRig {
	t.Helper()
	binary(t, "ingest") // build first (and skip under -short)
	binary(t, "sender")
	tag := make([]byte, 3)
	_, _ = rand.Read(tag)
	s := &scaleRig{faultRig: &faultRig{
		t: t, graph: fakegraph.New(t, fakegraph.Options{}),
		httpc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}},
		run:   hex.EncodeToString(tag), wants: newFaultIndex(), rnd: newFaultRand(t), trnd: newTrafficRand(t),
	}}
	t.Cleanup(s.httpc.CloseIdleConnections)
	s.graph.Latency(200 * time.Millisecond)
	s.nats = natstest.RunCluster(t, 3)
	var urls []string
	for _, n := range s.nats {
		urls = append(urls, n.ClientURL())
	}
	s.natsURL = strings.Join(urls, ",")
	s.redis = redistest.StartClusterN(t, 3, "--appendonly", "yes", "--appendfsync", "always")
	s.redisURL = redistest.ClusterURLOf(s.redis)
	nc, err := nats.Connect(s.natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if s.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	s.env = append(faultSenderEnv(s.natsURL, s.redisURL, s.graph.URL()),
		append([]string{"STREAM_REPLICAS=3", "CONTEXT_WAIT=20s"}, senderEnv...)...)
	for range 2 {
		addr := freeAddr(t)
		s.ingests = append(s.ingests, nil)
		s.ingEnvs = append(s.ingEnvs, append(faultIngestEnv(addr, freeAddr(t), s.redisURL, s.natsURL), "STREAM_REPLICAS=3"))
		s.faultRig.ingests = append(s.faultRig.ingests, "http://"+addr)
		s.startIngest(len(s.ingests) - 1)
	}
	return s
}

// startIngest starts ingest i on its address and waits until it is ready.
func (s *scaleRig) startIngest(i int) {
	s.t.Helper()
	p := start(s.t, "ingest", "", s.ingEnvs[i])
	waitHTTP(s.t, s.faultRig.ingests[i]+"/readyz", 30*time.Second)
	s.smu.Lock()
	s.ingests[i] = p
	s.smu.Unlock()
}

// startSender starts one more sender and waits until it consumes.
func (s *scaleRig) startSender() *proc {
	s.t.Helper()
	p := start(s.t, "sender", "", s.env)
	p.waitOutput(faultSenderReady, 60*time.Second)
	s.smu.Lock()
	s.senders = append(s.senders, p)
	s.smu.Unlock()
	return p
}

// stopSenders stops every sender gracefully.
func (s *scaleRig) stopSenders() {
	s.t.Helper()
	s.smu.Lock()
	ps := s.senders
	s.senders = nil
	s.smu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() { _ = p.Stop(30 * time.Second) })
	}
	wg.Wait()
}

// checkReplicas fails t unless CONVERSIONS, DLQ and PARKED have 3 replicas.
func (s *scaleRig) checkReplicas() {
	s.t.Helper()
	for _, name := range []string{"CONVERSIONS", "DLQ", "PARKED"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := s.js.Stream(ctx, name)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = st.Info(ctx)
		}
		cancel()
		if err != nil {
			s.t.Fatalf("stream %s: %v", name, err)
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			s.t.Fatalf("stream %s: %d replicas (%+v); want 3 (STREAM_REPLICAS=3)", name, info.Config.Replicas, info.Cluster)
		}
	}
}

// TestScaleOut: under steady traffic, one NATS node, one Redis master's
// process, one sender and one ingest are SIGKILLed (the NATS node shut
// down in-process) and restarted, in an order and at times drawn from the
// logged seed; then every conversion must end sent once or in the right
// dead letter (in_doubt allowed: a sender killed between Meta's accept and
// its answer cannot know) and every webhook delivery stored (answered 200
// at last; non-200 answers were redelivered as Meta does). The accounting
// table is printed.
func TestScaleOut(t *testing.T) {
	s := newScaleRig(t)
	for range 3 {
		s.startSender()
	}
	s.checkReplicas()

	stream := &faultStream{N: 3000, Batch: 5, PerSecond: 100}
	done := make(chan error, 1)
	go func() { done <- stream.run(s.faultRig) }()

	type fault struct {
		name string
		do   func() string
	}
	faults := []fault{
		{"NATS node", func() string {
			i := s.rnd.IntN(len(s.nats))
			s.nats[i].Shutdown()
			down := s.rnd.Duration(time.Second, 3*time.Second)
			time.Sleep(down) // outage length, from the seed
			s.nats[i].Start()
			return fmt.Sprintf("nats n%d down %s", i+1, down.Round(time.Millisecond))
		}},
		{"Redis master", func() string {
			i := s.rnd.IntN(len(s.redis))
			s.redis[i].Kill()
			down := s.rnd.Duration(500*time.Millisecond, 2*time.Second)
			time.Sleep(down)
			s.redis[i].Restart() // same port, AOF and nodes.conf: its slots and data
			return fmt.Sprintf("redis master %d SIGKILLed, restarted with AOF after %s", i+1, down.Round(time.Millisecond))
		}},
		{"sender", func() string {
			s.smu.Lock()
			i := s.rnd.IntN(len(s.senders))
			p := s.senders[i]
			s.senders = slices.Delete(s.senders, i, i+1)
			s.smu.Unlock()
			p.Kill()
			down := s.rnd.Duration(500*time.Millisecond, 2*time.Second)
			time.Sleep(down)
			s.startSender()
			return fmt.Sprintf("sender %d SIGKILLed, another started after %s", i+1, down.Round(time.Millisecond))
		}},
		{"ingest", func() string {
			i := s.rnd.IntN(len(s.ingests))
			s.smu.Lock()
			p := s.ingests[i]
			s.smu.Unlock()
			p.Kill()
			down := s.rnd.Duration(200*time.Millisecond, time.Second)
			time.Sleep(down)
			s.startIngest(i)
			return fmt.Sprintf("ingest %d SIGKILLed, restarted after %s", i+1, down.Round(time.Millisecond))
		}},
	}
	s.rnd.Shuffle(len(faults), func(i, j int) { faults[i], faults[j] = faults[j], faults[i] })
	var log []string
	for _, f := range faults {
		time.Sleep(s.rnd.Duration(time.Second, 3*time.Second)) // the next kill point, from the seed
		at := stream.published.Load()
		what := f.do()
		log = append(log, fmt.Sprintf("%s after %d published: %s", f.name, at, what))
		t.Log(log[len(log)-1])
	}
	if err := <-done; err != nil {
		t.Fatalf("traffic: %v", err)
	}
	tally := account(t, s.faultRig, s.since(0), faultAccountOpts{InDoubtOK: true, Within: 75 * time.Second})

	st := stream.statuses()
	deliveries := 0
	for _, n := range st {
		deliveries += n
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "webhook deliveries\t%d\tover 2 ingests\n", deliveries)
	for _, code := range slices.Sorted(maps.Keys(st)) {
		fmt.Fprintf(tw, "  first answer %d\t%d\t%s\n", code, st[code], map[bool]string{true: "stored", false: "redelivered until 200 (stored)"}[code == 200])
	}
	fmt.Fprintf(tw, "conversions published\t%d\tover 3 senders, one consumer\n", stream.N)
	fmt.Fprintf(tw, "  sent exactly once\t%d\t\n", tally.Sent)
	fmt.Fprintf(tw, "  dead letter in_doubt\t%d\t%d of them at Meta once\n", tally.InDoubt, tally.InDoubtAt)
	for _, reason := range slices.Sorted(maps.Keys(tally.Dead)) {
		fmt.Fprintf(tw, "  dead letter %s\t%d\t\n", reason, tally.Dead[reason])
	}
	fmt.Fprintf(tw, "  lost, duplicated, wrong reason\t0\t(account checked)\n")
	for _, l := range log {
		fmt.Fprintf(tw, "fault\t\t%s\n", l)
	}
	tw.Flush()
	t.Logf("scale-out accounting:\n%s", b.String())
	if tally.Sent+tally.InDoubt+sumValues(tally.Dead) != stream.N {
		t.Errorf("table does not add up to %d conversions", stream.N)
	}
}

// TestScaleOutThroughput is the benchmark line of the scale-out proof: one
// sender, then three, on the same clusters and the same 200 ms Graph, each
// given a backlog of conversions whose contexts are stored. It logs
// conversions/s of each and the ratio; it asserts no timing (the machine is
// shared). Each sender is given a fixed share of the Graph, as in
// production where MAX_INFLIGHT bounds a sender: one request in flight per
// business and 1 in all, over 120 businesses. The consumer is paused while
// the backlog is published.
//
//	CTM_SCALE_BENCH=1 go test ./test -run TestScaleOutThroughput -v
func TestScaleOutThroughput(t *testing.T) {
	if os.Getenv("CTM_SCALE_BENCH") != "1" {
		t.Skip("benchmark line: run with CTM_SCALE_BENCH=1")
	}
	s := newScaleRig(t, "MAX_INFLIGHT=1", "MAX_INFLIGHT_PER_BUSINESS=1", "LINGER=0", "QUEUE_MEMORY=1MiB",
		"BATCH_SIZE=50", "ACK_WAIT=30s", "SEND_LEASE=40s", "HTTP_TIMEOUT=10s", "SHUTDOWN_TIMEOUT=10s")
	// A sender creates the streams (R3) and the consumer; the backlogs are
	// published while none runs.
	s.startSender()
	s.checkReplicas()
	s.stopSenders()
	// One backlog, bigger than what three senders hold (QUEUE_MEMORY, about
	// 7,700 conversions each) plus what they send in both stretches: one
	// sender drains it for a while, then two more join. A sender serves its
	// 120 business queues in turn, one request each: a cycle of 24 s at 5
	// requests/s. Over its first cycle its requests grow from its share of
	// the first fetches (about 45 events) to their steady size (about 90,
	// twice the average queue), so each stretch is measured after a warm-up
	// longer than a cycle, over a window of one cycle. (With 2 s of warm-up
	// and 8 s windows both compared first cycles, 64 events a request
	// against 74, and gave 3.5x; with a backlog of 18,000 the three queues
	// also ran low, 50 events against 64, 2.4x.)
	const n = 130000
	const warmUp, window = 30 * time.Second, 24 * time.Second
	ctx := context.Background()
	if _, err := s.js.PauseConsumer(ctx, "CONVERSIONS", "sender", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.startSender()
	s.backlog(n)
	begin := s.graph.Accepted()
	if _, err := s.js.ResumeConsumer(ctx, "CONVERSIONS", "sender"); err != nil {
		t.Fatal(err)
	}
	// rate returns conversions/s and requests/s over a window.
	rate := func() (float64, float64) {
		time.Sleep(warmUp)
		c0, r0, t0 := s.graph.Accepted(), s.graph.Requests(), time.Now()
		time.Sleep(window)
		d := time.Since(t0).Seconds()
		return float64(s.graph.Accepted()-c0) / d, float64(s.graph.Requests()-r0) / d
	}
	one, oneReq := rate()
	s.startSender()
	s.startSender()
	three, threeReq := rate()
	left := n - (s.graph.Accepted() - begin)
	t.Logf("left in the backlog after the windows: %d (three full queues hold about 23,000)", left)
	account(t, s.faultRig, s.since(0), faultAccountOpts{Within: 5 * time.Minute})
	s.stopSenders()
	t.Logf("BENCH scale-out: 1 sender %.0f conv/s (%.1f requests/s, %.0f events each), 3 senders %.0f conv/s (%.1f requests/s, %.0f events each), ratio %.2fx (target >= 2.5x; 200 ms Graph, MAX_INFLIGHT=1 per sender)",
		one, oneReq, one/oneReq, three, threeReq, three/threeReq, three/one)
}

// backlog posts the webhooks of n messenger conversations over 120 pages
// (each stored: 200) and publishes their conversions, with no sender
// running.
func (s *scaleRig) backlog(n int) {
	s.t.Helper()
	const pages, batch = 120, 10
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := 0; i < n; i += batch {
		biz := faultBusiness{ID: fmt.Sprintf("1098%011d", (i/batch)%pages)}
		convs := s.convs(min(batch, n-i), "messenger", &biz)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.redeliver(faultWebhook(convs, time.Now()), 60*time.Second); err != nil {
				s.t.Error(err)
				return
			}
			for _, c := range convs {
				s.expect(faultWant{EventID: c.EventID, MsgIDs: []string{c.EventID}})
				if err := s.publish(c.subject(), c.EventID, c.conversion(time.Now())); err != nil {
					s.t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if s.t.Failed() {
		s.t.FailNow()
	}
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
