package trail

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/redis/go-redis/v9"
)

// An event's history: each state change a sender noted (received, waiting
// for its context, retrying, parked, dead letter with its reason, sent with
// the request's id), and the redrives and unparks that brought it back, by
// whom. A change is one JSON line appended, by a script, to the field
// "<event_id>\x1fh" of the hour hash its record goes to (same key, same
// expiry): no read before the write, one EVAL per business and hour per
// flush, and at most HistoryMax lines per event and hour.

// HistoryMax bounds the changes kept per event in one hour.
const HistoryMax = 20

// historySuffix makes an event's history field beside its record's.
const historySuffix = "\x1fh"

// Change is one state change.
type Change struct {
	At        Time   `json:"at"`
	State     string `json:"state"`
	Cause     string `json:"cause,omitempty"`      // why: the record's reason, the dead letter's reason and error
	RequestID string `json:"request_id,omitempty"` // sent: the attempt log's request
	DLQSeq    uint64 `json:"dlq_seq,omitempty"`    // dead letter: its DLQ sequence
	// By names who brought the event back (a redrive's actor: admin_token
	// or a console session) on its "redriven" or "resumed" change.
	By string `json:"by,omitempty"`
}

// Redriven and Resumed are the states of the changes that bring a message
// back from DLQ or PARKED.
const (
	Redriven = "redriven"
	Resumed  = "resumed"
)

// ChangeOf is r's change.
func ChangeOf(r *Record) Change {
	c := Change{At: r.UpdatedAt, State: r.State, Cause: r.Reason}
	if r.Sent != nil {
		c.RequestID = r.Sent.RequestID
	}
	if d := r.DeadLetter; d != nil {
		c.Cause, c.DLQSeq = strings.TrimSpace(d.Reason+": "+d.Error), d.Seq
	}
	return c
}

// addChange buffers r's change, and before it r.Before; w.mu is held.
func (w *Writer) addChange(k hourOf, r *Record) {
	if w.hist == nil {
		w.hist = map[hourOf][]any{}
	}
	for _, c := range append(r.Before[:len(r.Before):len(r.Before)], ChangeOf(r)) {
		line, err := json.Marshal(c)
		if err != nil {
			continue
		}
		w.hist[k] = append(w.hist[k], r.EventID, string(line))
	}
}

// appendHistory appends ARGV's (event_id, line) pairs to their history
// fields of KEYS[1], keeping the last ARGV[1] lines of each.
var appendHistory = redis.NewScript(`
local max = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  local f = ARGV[i] .. '\31h'
  local v = redis.call('HGET', KEYS[1], f)
  if not v then v = '' end
  v = v .. ARGV[i + 1] .. '\n'
  local n = 0
  for _ in string.gmatch(v, '\n') do n = n + 1 end
  while n > max do
    v = string.sub(v, string.find(v, '\n', 1, true) + 1)
    n = n - 1
  end
  redis.call('HSET', KEYS[1], f, v)
end
return 0`)

func drainHistory(ctx context.Context, p redis.Pipeliner, hist map[hourOf][]any) {
	for k, pairs := range hist {
		// In scripts of hsetFields changes at most, as Drain's HSETs: a
		// script runs whole, holding every other client meanwhile.
		for len(pairs) > 0 {
			n := min(len(pairs), 2*hsetFields)
			args := append([]any{HistoryMax}, pairs[:n]...)
			appendHistory.Eval(ctx, p, []string{hourKey(k.business, k.hour)}, args...)
			pairs = pairs[n:]
		}
	}
}

// parseHistory reads a history field's lines.
func parseHistory(v string) []Change {
	var out []Change
	for _, l := range strings.Split(v, "\n") {
		var c Change
		if l != "" && json.Unmarshal([]byte(l), &c) == nil {
			out = append(out, c)
		}
	}
	return out
}
