package test

import (
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
)

// TestFaultSoak is the long variant: every fault of the suite, mixed at
// random for several minutes of steady traffic with duplicate publishes,
// conversions that race their webhook and events Meta rejects, then the
// same accounting. It runs only when asked:
//
//	go test -race -run TestFaultSoak -timeout 30m ./test/ -args -soak
//	CTM_SOAK=1 CTM_SOAK_MINUTES=10 go test -run TestFaultSoak -timeout 40m ./test/
func TestFaultSoak(t *testing.T) {
	t.Parallel() // own ports, dirs and servers (newFaultRig)
	if !faultSoak() {
		t.Skip("long soak: run with -soak or CTM_SOAK=1")
	}
	minutes := 4
	if v, err := strconv.Atoi(os.Getenv("CTM_SOAK_MINUTES")); err == nil && v > 0 {
		minutes = v
	}
	const rate = 150
	r := newFaultRig(t, faultOptions{
		RedisArgs: []string{"--appendonly", "yes", "--appendfsync", "always"},
		SenderEnv: []string{"SEND_LEASE=2s", "HTTP_TIMEOUT=1s", "ACK_WAIT=3s", "BATCH_SIZE=50",
			"FAULT_PAGE2_TOKEN=" + faultOwnToken},
		Datasets: faultDatasetsFile,
		Tokens:   []string{fakegraph.DefaultToken, faultOwnToken},
	})
	mark := r.mark()
	reject := func(c faultConv) string {
		if c.n%113 == 0 {
			r.graph.RejectEventID(c.EventID)
			return "rejected"
		}
		return ""
	}
	s := &faultStream{N: minutes * 60 * rate, Batch: 10, PerSecond: rate, DupEvery: 7, LateWebhookEvery: 9, Fate: reject}
	done := make(chan error, 1)
	var over atomic.Bool
	go func() {
		err := s.run(r)
		over.Store(true)
		done <- err
	}()

	faults := []struct {
		name   string
		weight int
		do     func()
	}{
		{"kill the sender", 6, func() { r.currentSender().Kill(); r.startSender() }},
		{"kill redis-server", 1, func() {
			r.redis.Kill()
			time.Sleep(time.Duration(500+r.rnd.IntN(2500)) * time.Millisecond) // outage length
			r.redis.Restart()
		}},
		{"restart NATS", 1, func() { r.nats.Restart() }},
		{"kill ingest", 1, func() { r.ingP.Kill(); r.startIngest() }},
		{"revoke a business's token", 1, func() {
			r.graph.RevokeToken(faultOwnToken)
			time.Sleep(time.Duration(500+r.rnd.IntN(3000)) * time.Millisecond) // until the operator fixes it
			r.graph.SetTokens(fakegraph.DefaultToken, faultOwnToken)
		}},
		{"Graph 5xx burst", 2, func() { r.graph.FailNext(1+r.rnd.IntN(6), 500, 1+r.rnd.IntN(2)) }},
		{"Graph throttling", 2, func() { r.graph.FailNext(1+r.rnd.IntN(4), 400, []int{4, 17, 32, 613, 80004}[r.rnd.IntN(5)]) }},
		{"lost Graph response", 1, func() { r.graph.DropNext(1) }},
	}
	var total int
	for _, f := range faults {
		total += f.weight
	}
	counts := map[string]int{}
	for !over.Load() {
		time.Sleep(time.Duration(1000+r.rnd.IntN(4000)) * time.Millisecond) // next fault at a random point
		pick := r.rnd.IntN(total)
		for _, f := range faults {
			if pick -= f.weight; pick < 0 {
				f.do()
				counts[f.name]++
				break
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("traffic: %v", err)
	}
	t.Logf("faults injected over %d conversions: %v; first delivery answers %v", s.N, counts, s.statuses())
	account(t, r, r.since(mark), faultAccountOpts{InDoubtOK: true, Within: 5 * time.Minute})
}
