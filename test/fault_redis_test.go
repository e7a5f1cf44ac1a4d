package test

import (
	"testing"
	"time"
)

// Scenario 2: redis-server is SIGKILLed mid-stream and restarted. It runs
// with an append-only file fsync'd on every write (--appendonly yes
// --appendfsync always), as a production Redis should: what ingest answered
// 200 for, and the sender's ledger, survive the kill. (redistest's default
// is no persistence; a restart would then come back empty.) Meanwhile
// ingest answers 503 and /readyz 503; the 503'd deliveries are redelivered
// as Meta does until they get 200; conversions keep coming and wait for
// their contexts; nothing is lost or doubled.
func TestFaultRedisRestart(t *testing.T) {
	t.Parallel() // own ports, dirs and servers (newFaultRig)
	r := newFaultRig(t, faultOptions{RedisArgs: []string{"--appendonly", "yes", "--appendfsync", "always"}})
	mark := r.mark()
	early := r.convs(1, "whatsapp", nil)[0]
	if code := r.post(faultWebhook([]faultConv{early}, time.Now())); code != 200 {
		t.Fatalf("first webhook = %d; want 200", code)
	}

	s := &faultStream{N: 1500, Batch: 10, PerSecond: 150}
	done := make(chan error, 1)
	go func() { done <- s.run(r) }()
	waitFor(t, 60*time.Second, "traffic to flow", func() bool { return s.published.Load() >= 300 })
	r.redis.Kill()
	t.Logf("redis-server killed after %d conversions", s.published.Load())
	probe := faultWebhook(r.convs(1, "messenger", nil), time.Now()) // never published: no conversion waits for it
	if code := r.post(probe); code != 503 {
		t.Errorf("POST /webhook with Redis down = %d; want 503", code)
	}
	if code := r.get("/readyz"); code != 503 {
		t.Errorf("/readyz with Redis down = %d; want 503", code)
	}
	waitFor(t, 60*time.Second, "deliveries to be answered 503", func() bool { return s.statuses()[503] >= 15 })
	r.redis.Restart()
	t.Logf("redis-server restarted after %d conversions", s.published.Load())
	waitHTTP(t, r.ingest+"/readyz", 30*time.Second)
	if err := <-done; err != nil {
		t.Fatalf("traffic: %v", err)
	}
	st := s.statuses()
	for code, n := range st {
		if code != 200 && code != 503 {
			t.Errorf("%d deliveries answered %d; want only 200, or 503 while Redis is down", n, code)
		}
	}
	t.Logf("first answers to %d deliveries: %v; %d redelivered until 200", s.N/s.Batch, st, s.retried)

	// The click stored before the kill is still there (the append-only file):
	// its conversion, published only now, is attributed.
	if code := r.get("/v1/contexts/whatsapp/" + early.Biz.ID + "/" + early.User); code != 200 {
		t.Errorf("context stored before the kill = %d after the restart; want 200", code)
	}
	r.expect(faultWant{EventID: early.EventID, MsgIDs: []string{early.EventID}})
	if err := r.publish(early.subject(), early.EventID, early.conversion(time.Now())); err != nil {
		t.Fatal(err)
	}
	// A claim whose reply was lost with the connection may outlive its
	// release retries: such events end in doubt, never doubled.
	account(t, r, r.since(mark), faultAccountOpts{InDoubtOK: true})
}

// Redis stalls (DEBUG SLEEP: as a fork, a slow disk or a huge command
// would) for longer than ingest's STORE_TIMEOUT and the clients' read
// timeout, twice mid-stream. Ingest answers 503 (the write may still land:
// the redelivery is harmless), the sender's ledger calls time out and are
// handed back; the commands that did reach Redis run after the stall.
func TestFaultRedisStall(t *testing.T) {
	t.Parallel() // own ports, dirs and servers (newFaultRig)
	r := newFaultRig(t, faultOptions{RedisArgs: []string{"--enable-debug-command", "local"}})
	mark := r.mark()
	rdb := r.redis.Client(t)
	stall := func() {
		if err := rdb.Do(t.Context(), "DEBUG", "SLEEP", "4").Err(); err != nil {
			t.Fatalf("DEBUG SLEEP: %v", err)
		}
	}
	s := &faultStream{N: 1200, Batch: 10, PerSecond: 150}
	r.during(t, s, faultStep{At: 300, Do: stall}, faultStep{At: 700, Do: stall})
	st := s.statuses()
	if st[503] == 0 {
		t.Errorf("no delivery answered 503 during a 4s Redis stall (STORE_TIMEOUT 1s): %v", st)
	}
	t.Logf("first answers: %v", st)
	account(t, r, r.since(mark), faultAccountOpts{})
}
