package trail_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/internal/trail"
)

// Records and counters buffered by the Writer go out in the pipeline of a
// round trip made anyway; a duplicate keeps the trail there; the stats and
// a business's 24 h read them back.
func TestWriterDrainStatsBusiness(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	if !trail.CanCount(ctx, rdb) {
		t.Fatal("redis-server cannot count?")
	}
	w := trail.NewWriter(time.Hour)
	now := time.Now()
	sent := &trail.Record{BusinessID: "1001", EventID: "ord-1", State: trail.Sent, Attempts: 1,
		FirstSeenAt: trail.At(now), UpdatedAt: trail.At(now), Sent: &trail.SentTo{DatasetID: "7001", At: trail.At(now), FBTraceID: "AbC", EventsReceived: 3}}
	w.Put(sent)
	dup := *sent
	dup.State, dup.Sent = trail.Duplicate, nil
	dup.UpdatedAt = trail.At(now.Add(time.Hour)) // a copy an hour later: must not hide the sent trail
	w.Put(&dup)
	w.Put(&trail.Record{BusinessID: "1001", EventID: "ord-2", State: trail.Duplicate, UpdatedAt: trail.At(now)})
	w.Count("1001", now, trail.FieldConversions, 2)
	w.Count("1001", now, trail.FieldSent, 1)
	w.Count("1001", now, trail.FieldDeadLetter+"rejected", 1)
	w.Count("", now, trail.FieldWaitingContext, 4)
	w.Count("", now, trail.FieldWebhooks, 5)
	for _, d := range []time.Duration{100 * time.Millisecond, 180 * time.Millisecond, 190 * time.Millisecond, 2500 * time.Millisecond} {
		w.Latency(now, d)
	}
	w.Accepted("1001", now)

	h := &redistest.RoundTrips{}
	rdb.AddHook(h)
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error { p.Ping(ctx); return nil }); err != nil { // dial first
		t.Fatal(err)
	}
	h.N.Store(0)
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "the-round-trip-made-anyway", "1", time.Minute)
		w.Drain(ctx, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := h.N.Load(); n != 1 {
		t.Errorf("%d round trips; want the one made anyway", n)
	}

	r, err := trail.Read(ctx, rdb, "1001", "ord-1", time.Hour, now.Add(time.Hour))
	if err != nil || r.State != trail.Sent || r.Sent == nil || r.Sent.FBTraceID != "AbC" || r.Sent.EventsReceived != 3 {
		t.Errorf("Read(ord-1) = %+v, %v; want still sent with Meta's answer", r, err)
	}
	if r, err := trail.Read(ctx, rdb, "1001", "ord-2", time.Hour, now); err != nil || r.State != trail.Duplicate {
		t.Errorf("Read(ord-2) = %+v, %v; want duplicate", r, err)
	}
	if _, err := trail.Read(ctx, rdb, "1001", "nope", time.Hour, now); err != trail.ErrNotFound {
		t.Errorf("Read(nope) = %v; want ErrNotFound", err)
	}
	if ttl := rdb.TTL(ctx, trail.HourKey("1001", now)).Val(); ttl <= time.Hour || ttl > 2*time.Hour {
		t.Errorf("trail ttl = %v; want SENT_TTL (1h here) after the hour ends", ttl)
	}
	if _, err := trail.Read(ctx, rdb, "1001", "ord-1", time.Hour, now.Add(5*time.Hour)); err != trail.ErrNotFound {
		t.Errorf("Read past SENT_TTL = %v; want ErrNotFound", err)
	}

	st, err := trail.ReadStats(ctx, rdb, "1h", now)
	if err != nil {
		t.Fatal(err)
	}
	last := len(st.Series["sent"]) - 1
	if st.StepSeconds != 60 || len(st.Series["sent"]) != 60 || st.Series["sent"][last] != 1 || st.Series["conversions"][last] != 2 ||
		st.Series["webhooks"][last] != 5 || st.Series["dead_letters"][last] != 1 {
		t.Errorf("1h series = %+v; want this minute last: sent 1, conversions 2, webhooks 5, dead letters 1", st.Series)
	}
	if st.Outcomes["sent"] != 1 || st.Outcomes["dead_letter:rejected"] != 1 || st.Outcomes["waiting_context"] != 4 || st.Outcomes["webhooks"] != 0 {
		t.Errorf("outcomes = %v", st.Outcomes)
	}
	if st.GraphLatencyMS["p50"] != 200 || st.GraphLatencyMS["p99"] != 3000 {
		t.Errorf("latency = %v; want p50 200, p99 3000 (bucket bounds)", st.GraphLatencyMS)
	}
	day, err := trail.ReadStats(ctx, rdb, "24h", now)
	if err != nil || day.StepSeconds != 3600 || len(day.Series["sent"]) != 24 || day.Series["sent"][23] != 1 {
		t.Errorf("24h = %+v, %v; want 24 hourly steps, this hour's sent 1", day, err)
	}
	if _, err := trail.ReadStats(ctx, rdb, "7d", now); err == nil {
		t.Error("window 7d accepted")
	}
	b, err := trail.ReadBusiness(ctx, rdb, now, "1001")
	if err != nil || b.Sent != 1 || b.Conversions != 2 || b.DeadLetters["rejected"] != 1 || b.LastAccepted == nil ||
		b.LastAccepted.UnixMilli() != now.UnixMilli() {
		t.Errorf("ReadBusiness = %+v, %v", b, err)
	}
}

// Run flushes on its own what no round trip took within FlushAfter.
func TestWriterRunFlushesLeftovers(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	w := trail.NewWriter(time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx, rdb, func(err error) { t.Error(err) }); close(done) }()
	w.Put(&trail.Record{BusinessID: "b", EventID: "e", State: trail.Retrying, UpdatedAt: trail.At(time.Now())})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := trail.Read(t.Context(), rdb, "b", "e", time.Hour, time.Now()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not flushed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}

// A few records ride on a round trip made anyway; many wait for Run's own.
func TestCarryTakesFewOnly(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	w := trail.NewWriter(time.Hour)
	put := func(n int) {
		for i := range n {
			w.Put(&trail.Record{BusinessID: "b", EventID: "e" + time.Duration(i).String(), State: trail.Sent, UpdatedAt: trail.At(time.Now())})
		}
	}
	carry := func() int64 {
		cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error { p.Ping(ctx); w.Carry(ctx, p); return nil })
		if err != nil {
			t.Fatal(err)
		}
		return int64(len(cmds))
	}
	put(trail.CarryMax)
	if n := carry(); n != 4 { // PING, HSET, EXPIREAT, EVAL (the histories)
		t.Errorf("%d commands with %d records buffered; want them carried (4)", n, trail.CarryMax)
	}
	put(trail.CarryMax + 1)
	if n := carry(); n != 1 {
		t.Errorf("%d commands with %d records buffered; want none carried", n, trail.CarryMax+1)
	}
	if err := w.Flush(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	if n := rdb.HLen(ctx, trail.HourKey("b", time.Now())).Val(); n != 2*(trail.CarryMax+1) {
		t.Errorf("%d fields stored; want %d (records and their histories)", n, 2*(trail.CarryMax+1))
	}
}

// A busy flush writes a business's hour in several HSETs (so that Redis
// serves other clients between them) and loses none of its records.
func TestFlushManyRecordsOfOneHour(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	w := trail.NewWriter(time.Hour)
	now := time.Now()
	const n = 1000
	for i := range n {
		w.Put(&trail.Record{BusinessID: "b", EventID: "e-" + strconv.Itoa(i), State: trail.Sent, UpdatedAt: trail.At(now)})
	}
	if err := w.Flush(t.Context(), rdb); err != nil {
		t.Fatal(err)
	}
	if got := rdb.HLen(t.Context(), trail.HourKey("b", now)).Val(); got != 2*n {
		t.Fatalf("%d fields in the hour's hash; want %d (each record and its history)", got, 2*n)
	}
	for _, id := range []string{"e-0", "e-255", "e-256", "e-511", "e-512", "e-999"} {
		r, err := trail.Read(t.Context(), rdb, "b", id, time.Hour, now)
		if err != nil || r.EventID != id || r.State != trail.Sent {
			t.Fatalf("%s: %+v, %v", id, r, err)
		}
	}
}
