package trail

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/redis/go-redis/v9"
)

// The attempt log: one entry per Graph request a sender made for a
// business (its dataset, time, events, HTTP status, latency, fbtrace_id,
// and Meta's error code and scrubbed message when it failed), newest
// first in the business's list ctm:attempts:{<business>}.
//
// Bounded per business: the list is trimmed to AttemptsPerBusiness at
// every flush and expires AttemptsTTL after its last write, and entries
// older than AttemptsTTL are not read. An entry is about 250 bytes, so a
// business costs at most ~250 KB. At 1,000 requests/s the writes ride on
// the trail's flushes (Writer): one LPUSH of the flush's entries, an LTRIM
// and an EXPIRE per business per FlushAfter, about 250 KB/s written, and
// the memory stays AttemptsPerBusiness × 250 B per business (1,000
// businesses: 250 MB at most). The price of the bound: a business sending
// more than AttemptsPerBusiness requests in 7 days keeps only its newest
// (at 1,000 requests/s to one business, the last second).
const (
	AttemptsPerBusiness = 1000
	AttemptsTTL         = 7 * 24 * time.Hour
)

// Attempt is one Graph request.
type Attempt struct {
	ID         string `json:"id"` // the request id the trail's sent record links to
	At         Time   `json:"at"`
	BusinessID string `json:"business_id"`
	DatasetID  string `json:"dataset_id"`
	Events     int    `json:"events"`
	Status     int    `json:"status"` // HTTP status; 0: no answer
	LatencyMS  int64  `json:"latency_ms"`
	FBTraceID  string `json:"fbtrace_id,omitempty"`
	// EventsReceived is Meta's count of a 200.
	EventsReceived int    `json:"events_received,omitempty"`
	Code           int    `json:"code,omitempty"` // Meta's error code
	Subcode        int    `json:"subcode,omitempty"`
	Class          string `json:"class,omitempty"` // the sender's class of the error
	// Message is Meta's message with secrets (capi.Scrub, by the caller)
	// and what looks personal (ScrubPersonal) cut out.
	Message string `json:"message,omitempty"`
	// DryRun: the sender ran with CAPI_DRYRUN_FILE; nothing reached Meta.
	DryRun bool `json:"dry_run,omitempty"`
}

func attemptsKey(business string) string { return "ctm:attempts:{" + business + "}" }

// personal are what Meta's message may quote of an event: phone numbers
// and other long digit runs (a wa_id, a PSID), e-mail addresses, and
// click ids (long base64url runs).
var personal = []*regexp.Regexp{
	regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`),
	regexp.MustCompile(`[A-Za-z0-9_-]{24,}`),
	regexp.MustCompile(`\+?\d[\d\s().-]{6,}\d`),
}

// ScrubPersonal replaces in s what may be a personal id with "[removed]".
func ScrubPersonal(s string) string {
	for _, re := range personal {
		s = re.ReplaceAllString(s, "[removed]")
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// Attempt buffers a's entry for the next flush.
func (w *Writer) Attempt(a Attempt) {
	if w == nil {
		return
	}
	a.Message = ScrubPersonal(a.Message)
	b, err := json.Marshal(a)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.attempts == nil {
		w.attempts = map[string][]any{}
	}
	l := w.attempts[a.BusinessID]
	if len(l) >= AttemptsPerBusiness { // only the newest are kept anyway
		l = l[1:]
	}
	w.attempts[a.BusinessID] = append(l, string(b))
	w.touch(time.Now())
	w.n++
}

// drainAttempts queues the buffered entries on p: oldest pushed first, so
// the list reads newest first.
func drainAttempts(ctx context.Context, p redis.Pipeliner, attempts map[string][]any) {
	for b, entries := range attempts {
		k := attemptsKey(b)
		p.LPush(ctx, k, entries...)
		p.LTrim(ctx, k, 0, AttemptsPerBusiness-1)
		p.Expire(ctx, k, AttemptsTTL)
	}
}

// ReadAttempts returns up to limit of business's attempts, newest first,
// skipping offset, none older than AttemptsTTL at now.
func ReadAttempts(ctx context.Context, rdb redis.UniversalClient, business string, offset, limit int, now time.Time) ([]Attempt, error) {
	raw, err := rdb.LRange(ctx, attemptsKey(business), int64(offset), int64(offset+limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("trail: attempts: %w", err)
	}
	out := make([]Attempt, 0, len(raw))
	for _, r := range raw {
		var a Attempt
		if json.Unmarshal([]byte(r), &a) != nil || now.Sub(a.At.Time) > AttemptsTTL {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}
