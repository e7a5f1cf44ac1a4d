package sender

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
)

// Each Graph request is in its business's attempt log with Meta's
// fbtrace_id, or its error code and a message without token or personal
// id; a dry run says so.
func TestLogAttempt(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	s := &Service{instance: "abc", tw: trail.NewWriter(time.Hour)}
	start := time.Now()
	ok := s.logAttempt("b1", "d1", start, 120*time.Millisecond, 3, capi.Response{FBTraceID: "TRACE1", EventsReceived: 3}, nil)
	bad := s.logAttempt("b1", "d1", start, 80*time.Millisecond, 2, capi.Response{},
		&capi.APIError{Status: 400, Code: 100, Message: "Invalid parameter em a.person@example.com access_token=EAAsecret0123456789abcdefghij", FBTraceID: "TRACE2"})
	s.cfg.DryRunFile = "/tmp/dry.jsonl"
	s.logAttempt("b1", "d1", start, time.Millisecond, 1, capi.Response{}, nil)
	s.logAttempt("b1", "d1", start, time.Millisecond, 1, capi.Response{}, errors.New("dial tcp: connection refused"))
	if err := s.tw.Flush(t.Context(), rdb); err != nil {
		t.Fatal(err)
	}
	got, err := trail.ReadAttempts(t.Context(), rdb, "b1", 0, 10, start)
	if err != nil || len(got) != 4 {
		t.Fatalf("attempts = %+v, %v; want 4", got, err)
	}
	dry, failed, okA := got[1], got[2], got[3] // newest first
	if okA.ID != ok || okA.Status != 200 || okA.FBTraceID != "TRACE1" || okA.Events != 3 || okA.LatencyMS != 120 || okA.DryRun {
		t.Errorf("accepted request = %+v", okA)
	}
	if failed.ID != bad || failed.Code != 100 || failed.Status != 400 || failed.FBTraceID != "TRACE2" || failed.Class == "" {
		t.Errorf("refused request = %+v", failed)
	}
	for _, secret := range []string{"a.person@example.com", "EAAsecret"} {
		if strings.Contains(failed.Message, secret) {
			t.Errorf("message %q holds %q", failed.Message, secret)
		}
	}
	if !dry.DryRun {
		t.Errorf("dry run request = %+v; want dry_run", dry)
	}
}
