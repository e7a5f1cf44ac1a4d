package trail

import (
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Read returns every change of an event, oldest first, across flushes and
// hours, the redrive's actor with it, and at most HistoryMax per hour.
func TestHistory(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	w := NewWriter(24 * time.Hour)
	t0 := time.Now().Add(-2 * time.Hour)
	w.Put(&Record{BusinessID: "b", EventID: "e", State: DeadLetter, UpdatedAt: At(t0),
		DeadLetter: &Letter{Reason: "rejected", Error: "code 100", Seq: 7},
		Before:     []Change{{At: At(t0), State: "received"}}})
	if err := w.Flush(t.Context(), rdb); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	w.Put(&Record{BusinessID: "b", EventID: "e", State: Sent, UpdatedAt: At(t1),
		Sent:   &SentTo{DatasetID: "d", At: At(t1), RequestID: "abc-1"},
		Before: []Change{{At: At(t1), State: Redriven, By: "console:1a2b3c4d"}}})
	if err := w.Flush(t.Context(), rdb); err != nil {
		t.Fatal(err)
	}
	r, err := Read(t.Context(), rdb, "b", "e", 24*time.Hour, t1)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, c := range r.History {
		states = append(states, c.State)
	}
	if len(r.History) != 4 || states[0] != "received" || states[1] != DeadLetter || states[2] != Redriven || states[3] != Sent {
		t.Fatalf("history = %v; want received, dead_letter, redriven, sent", states)
	}
	if h := r.History; h[1].DLQSeq != 7 || h[1].Cause != "rejected: code 100" || h[2].By != "console:1a2b3c4d" || h[3].RequestID != "abc-1" {
		t.Errorf("history = %+v", h)
	}
	for range HistoryMax + 5 {
		w.Put(&Record{BusinessID: "b", EventID: "f", State: Retrying, UpdatedAt: At(t1)})
	}
	if err := w.Flush(t.Context(), rdb); err != nil {
		t.Fatal(err)
	}
	if r, _ := Read(t.Context(), rdb, "b", "f", 24*time.Hour, t1); len(r.History) != HistoryMax {
		t.Errorf("history of %d changes in one hour; want the last %d", len(r.History), HistoryMax)
	}
}
