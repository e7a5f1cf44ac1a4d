// Package trail keeps what became of each conversion (its trail) and the
// per-minute counters behind GET /v1/stats, in Redis.
//
// The sender writes both without a round trip per event: Writer buffers
// the records and counter increments its settlements produce. A few
// (CarryMax) ride on the sender's next ledger round trip (claims, post
// markers, sent marks) in the same pipeline (Writer.Carry); more, or what
// no ledger round trip took within FlushAfter, go in one round trip of
// their own (Writer.Run), off the path of the events: a busy sender pays
// one round trip per FlushAfter for all its records, a quiet one none.
//
// A record is one JSON value per event (without the business_id and
// event_id its key and field hold), a field (the event_id) of its
// business's hash of the hour it last changed in, ctm:trail:{<business>}:<unix
// hour>, kept SENT_TTL after that hour. One hash per business and hour, not
// one key per event, because a flush then writes a business's records with
// one HSET, which costs Redis and the client a fraction of one SET per event
// (BenchmarkTrailOnOff). A record holds ids the ledger and the stream hold
// already (business_id, event_id) and no personal id: no wa_id, BSUID,
// PSID, IGSID or click id.
package trail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The states of a trail.
const (
	WaitingContext = "waiting_context" // no ad-click context yet; looked up again at retry_at
	Retrying       = "retrying"        // handed back after a transient failure; comes again at retry_at
	Parked         = "parked"          // its business is paused; waits in stream PARKED
	Sent           = "sent"            // Meta accepted it
	Duplicate      = "duplicate"       // the ledger says it was sent already; not sent again
	DeadLetter     = "dead_letter"     // in stream DLQ with a reason
	InDoubt        = "in_doubt"        // a send may have reached Meta; an operator decides
)

// Time is a time in JSON as RFC 3339 UTC with milliseconds.
type Time struct{ time.Time }

// TimeLayout is how Time is written.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// At returns t as a Time.
func At(t time.Time) Time { return Time{t.UTC()} }

// MarshalJSON writes t as RFC 3339 UTC with milliseconds.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(TimeLayout) + `"`), nil
}

// UnmarshalJSON reads an RFC 3339 time.
func (t *Time) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// Record is the trail of one conversion, as GET /v1/events answers it.
type Record struct {
	BusinessID string `json:"business_id"`
	EventID    string `json:"event_id"`
	State      string `json:"state"`
	// Attempts counts the deliveries of the conversion's message to a
	// sender (JetStream's NumDelivered): 1 for one sent at the first try.
	Attempts    uint64  `json:"attempts"`
	FirstSeenAt Time    `json:"first_seen_at"` // when it was first published
	UpdatedAt   Time    `json:"updated_at"`
	EventName   string  `json:"event_name,omitempty"`
	Channel     string  `json:"channel,omitempty"`
	Sent        *SentTo `json:"sent,omitempty"`
	DeadLetter  *Letter `json:"dead_letter,omitempty"`
	RetryAt     *Time   `json:"retry_at,omitempty"`
	Reason      string  `json:"reason,omitempty"` // why it waits, retries or is parked
	// History is every state change kept, oldest first (history.go); Read
	// fills it, the record itself does not hold it.
	History []Change `json:"history,omitempty"`
	// Before are changes the writer adds to the history ahead of this
	// record's own (the redrive that brought the event back); not stored
	// in the record.
	Before []Change `json:"-"`
}

// SentTo is where and when Meta accepted an event, with Meta's answer.
type SentTo struct {
	DatasetID      string `json:"dataset_id"`
	At             Time   `json:"at"`
	FBTraceID      string `json:"fbtrace_id,omitempty"`
	EventsReceived int    `json:"events_received"` // of the whole request
	// RequestID is the request's id in the business's attempt log
	// (GET /v1/businesses/{id}/attempts).
	RequestID string `json:"request_id,omitempty"`
}

// Letter is a dead letter's reason, error text and DLQ sequence.
type Letter struct {
	Reason string `json:"reason"`
	Error  string `json:"error"`
	Seq    uint64 `json:"seq,omitempty"`
}

// HourKey is the hash of business's trails that changed in at's hour.
func HourKey(business string, at time.Time) string {
	return hourKey(business, at.Unix()/3600)
}

func hourKey(business string, hour int64) string {
	return "ctm:trail:{" + business + "}:" + strconv.FormatInt(hour, 10)
}

// ErrNotFound is Read's answer for an event without a trail.
var ErrNotFound = errors.New("trail: no trail for this event")

// Read returns the trail of business's eventID kept within ttl (SENT_TTL)
// of now, in one round trip over the hour hashes: the newest record, except
// that a duplicate does not hide an older sent record (a redelivered copy of
// an event sent before).
func Read(ctx context.Context, rdb redis.UniversalClient, business, eventID string, ttl time.Duration, now time.Time) (Record, error) {
	var r Record
	hours := int(ttl/time.Hour) + 2
	top := now.Unix() / 3600
	gets := make([]*redis.StringCmd, hours)
	hist := make([]*redis.StringCmd, hours)
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range gets {
			gets[i] = p.HGet(ctx, hourKey(business, top-int64(i)), eventID)
			hist[i] = p.HGet(ctx, hourKey(business, top-int64(i)), eventID+historySuffix)
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return r, fmt.Errorf("trail: read: %w", err)
	}
	found := false
	for _, g := range gets {
		v, err := g.Bytes()
		if err != nil {
			continue
		}
		var x Record
		if err := json.Unmarshal(v, &x); err != nil {
			return r, fmt.Errorf("trail: read: %w", err)
		}
		if !found {
			r, found = x, true
			if x.State != Duplicate {
				break
			}
			continue
		}
		if x.State == Sent { // the duplicate's original
			r = x
			break
		}
	}
	if !found {
		return r, ErrNotFound
	}
	for i := len(hist) - 1; i >= 0; i-- { // oldest hour first
		if v, err := hist[i].Result(); err == nil {
			r.History = append(r.History, parseHistory(v)...)
		}
	}
	r.BusinessID, r.EventID = business, eventID // not stored (appendJSON)
	return r, nil
}
