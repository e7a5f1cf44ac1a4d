package trail

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// A business's attempt log keeps its newest AttemptsPerBusiness requests,
// newest first, none older than AttemptsTTL, and no personal id in
// Meta's message.
func TestAttemptsBounded(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	w := NewWriter(time.Hour)
	now := time.Now()
	old := Attempt{ID: "old", At: At(now.Add(-AttemptsTTL - time.Hour)), BusinessID: "b1"}
	w.Attempt(old)
	if err := w.Flush(t.Context(), rdb); err != nil {
		t.Fatal(err)
	}
	for i := range AttemptsPerBusiness + 5 {
		w.Attempt(Attempt{ID: strconv.Itoa(i), At: At(now), BusinessID: "b1", Status: 400, Code: 100,
			Message: "Invalid parameter: user_data.ph +1 (631) 555-0177, em a.person@example.com, ctwa_clid ARAconsoleE2EClick_0123456789"})
	}
	if err := w.Flush(t.Context(), rdb); err != nil {
		t.Fatal(err)
	}
	if n := rdb.LLen(t.Context(), attemptsKey("b1")).Val(); n != AttemptsPerBusiness {
		t.Errorf("list holds %d; want %d", n, AttemptsPerBusiness)
	}
	if ttl := mr.TTL(attemptsKey("b1")); ttl != AttemptsTTL {
		t.Errorf("TTL = %v; want %v", ttl, AttemptsTTL)
	}
	got, err := ReadAttempts(t.Context(), rdb, "b1", 0, 3, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != strconv.Itoa(AttemptsPerBusiness+4) {
		t.Fatalf("newest = %+v; want %d first", got, AttemptsPerBusiness+4)
	}
	for _, bad := range []string{"555-0177", "a.person@example.com", "ARAconsoleE2EClick"} {
		if strings.Contains(got[0].Message, bad) {
			t.Errorf("message %q holds %q", got[0].Message, bad)
		}
	}
	// The old entry was trimmed; put one back at the tail and it is not read.
	mr.Lpush(attemptsKey("b2"), `{"id":"old","at":"`+old.At.Format(TimeLayout)+`","business_id":"b2"}`)
	if got, _ := ReadAttempts(t.Context(), rdb, "b2", 0, 10, now); len(got) != 0 {
		t.Errorf("entries past 7 days read: %+v", got)
	}
}
