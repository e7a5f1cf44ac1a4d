package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fastjson"

	"github.com/ctmpipe/ctmpipe/internal/jsfetch"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// DeadLetterFilter selects dead letters for listing, showing and redrive
// (sender dlq, the admin API). Every field is optional.
type DeadLetterFilter struct {
	Reason   string    // one reason (empty: all)
	Business string    // the message's business_id
	Since    time.Time // dead-lettered at or after
	Seqs     []uint64  // only these DLQ sequences
	Before   uint64    // only sequences below (a list's cursor; 0: none)
}

// DeadLetterInfo is one dead letter as listed: no personal id.
type DeadLetterInfo struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"-"`
	Reason     string    `json:"reason"`
	BusinessID string    `json:"business_id"`
	EventID    string    `json:"event_id"`
	Channel    string    `json:"channel"`
	Error      string    `json:"error"`
	data       []byte
}

// ErrNoDeadLetter is ShowDeadLetter's answer for an unknown sequence.
var ErrNoDeadLetter = errors.New("no dead letter with this sequence")

// matches reports whether the letter m (at seq) passes f, and its info.
func (f DeadLetterFilter) match(m jetstream.Msg, md *jetstream.MsgMetadata) (DeadLetterInfo, bool) {
	info := letterInfo(m.Headers().Get(HeaderReason), m.Headers().Get(HeaderError), m.Headers().Get(HeaderEventID), md.Sequence.Stream, md.Timestamp, m.Data())
	switch {
	case f.Before > 0 && info.Seq >= f.Before,
		len(f.Seqs) > 0 && !slices.Contains(f.Seqs, info.Seq),
		f.Reason != "" && info.Reason != f.Reason,
		f.Business != "" && info.BusinessID != f.Business,
		!f.Since.IsZero() && info.Time.Before(f.Since):
		return info, false
	}
	return info, true
}

func letterInfo(reason, text, eventID string, seq uint64, at time.Time, data []byte) DeadLetterInfo {
	var c struct {
		EventID    string `json:"event_id"`
		BusinessID string `json:"business_id"`
		Channel    string `json:"channel"`
	}
	_ = json.Unmarshal(data, &c) // an invalid letter may not be JSON at all
	if eventID == "" {
		eventID = c.EventID
	}
	return DeadLetterInfo{Seq: seq, Time: at.UTC(), Reason: reason, BusinessID: c.BusinessID, EventID: eventID,
		Channel: c.Channel, Error: text, data: data}
}

// ListDeadLetters returns up to limit dead letters passing f, newest first,
// and whether older ones pass f too (then the next page is f with Before
// set to the last one's Seq). It reads DLQ backwards in windows of stream
// sequences (listWindow, doubling each time) until it has limit+1 matches
// or reaches the first letter since f.Since (found first) or the stream's
// start: a page of recent letters reads a few hundred messages, however
// long DLQ is, and a rare selection reads as far back as it must.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, f DeadLetterFilter, limit int) ([]DeadLetterInfo, bool, error) {
	if limit <= 0 {
		limit = 50
	}
	stream, err := js.Stream(ctx, StreamDLQ)
	if err != nil {
		return nil, false, fmt.Errorf("dead letters: stream %s: %w", StreamDLQ, err)
	}
	st := stream.CachedInfo().State
	if st.Msgs == 0 {
		return nil, false, nil
	}
	hi := st.LastSeq + 1 // the window is [lo, hi)
	if f.Before > 0 {
		hi = min(hi, f.Before)
	}
	floor := st.FirstSeq
	if !f.Since.IsZero() {
		seq, ok, err := firstSince(ctx, stream, f.Since)
		if err != nil || !ok {
			return nil, false, err
		}
		floor = max(floor, seq)
	}
	var found []DeadLetterInfo // newest first
	for window := uint64(listWindow); hi > floor && len(found) <= limit; window = min(2*window, maxListWindow) {
		lo := max(floor, hi-min(window, hi))
		in, err := readWindow(ctx, stream, f, lo, hi) // oldest first
		if err != nil {
			return nil, false, err
		}
		slices.Reverse(in)
		found = append(found, in...)
		hi = lo
	}
	more := len(found) > limit
	if more {
		found = found[:limit]
	}
	return found, more, nil
}

// firstSince returns the sequence of DLQ's first letter stored at or after
// since, and false when there is none.
func firstSince(ctx context.Context, stream jetstream.Stream, since time.Time) (uint64, bool, error) {
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{SubjectDLQ},
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since, InactiveThreshold: orderedInactive})
	if err != nil {
		return 0, false, fmt.Errorf("dead letters: read %s: %w", StreamDLQ, err)
	}
	var seq uint64
	err = jsfetch.Pending(ctx, cons, 1, func(_ jetstream.Msg, md *jetstream.MsgMetadata) (bool, error) {
		seq = md.Sequence.Stream
		return true, nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("dead letters: read %s: %w", StreamDLQ, err)
	}
	return seq, seq > 0, nil
}

// orderedInactive is how long the server keeps a list's ordered consumers
// once unused: each is read once, so not the default 5 minutes.
const orderedInactive = 10 * time.Second

// The windows ListDeadLetters reads DLQ in: the first, and the largest the
// doubling reaches.
const (
	listWindow    = 256
	maxListWindow = 1 << 16
)

// listRead counts the messages ListDeadLetters read (its tests check that
// a page of recent letters does not read the whole stream).
var listRead atomic.Int64

// readWindow returns the letters of stream sequences [lo, hi) that pass f,
// oldest first.
func readWindow(ctx context.Context, stream jetstream.Stream, f DeadLetterFilter, lo, hi uint64) ([]DeadLetterInfo, error) {
	subject := SubjectDLQ
	if f.Reason != "" {
		subject = "dlq." + f.Reason
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject},
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: lo, InactiveThreshold: orderedInactive})
	if err != nil {
		return nil, fmt.Errorf("dead letters: read %s: %w", StreamDLQ, err)
	}
	var in []DeadLetterInfo
	// At most hi-lo messages lie in the window: no fetch past it (a gap
	// makes the window end sooner, on the check below).
	err = jsfetch.Pending(ctx, cons, int(hi-lo), func(m jetstream.Msg, md *jetstream.MsgMetadata) (bool, error) {
		if md.Sequence.Stream >= hi {
			return true, nil
		}
		listRead.Add(1)
		if info, ok := f.match(m, md); ok { // f.Since too: the floor is only where since begins
			info.data = nil
			in = append(in, info)
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("dead letters: read %s: %w", StreamDLQ, err)
	}
	return in, nil
}

// ShowDeadLetter returns the dead letter at seq and its message (the
// original conversion), personal ids masked unless reveal.
func ShowDeadLetter(ctx context.Context, js jetstream.JetStream, seq uint64, reveal bool) (DeadLetterInfo, json.RawMessage, error) {
	stream, err := js.Stream(ctx, StreamDLQ)
	if err != nil {
		return DeadLetterInfo{}, nil, fmt.Errorf("dead letters: stream %s: %w", StreamDLQ, err)
	}
	m, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetterInfo{}, nil, ErrNoDeadLetter
	}
	if err != nil {
		return DeadLetterInfo{}, nil, fmt.Errorf("dead letters: get %d: %w", seq, err)
	}
	h := m.Header
	data := m.Data
	if name := h.Get(HeaderBodyObject); name != "" {
		if store, err := bodies(ctx, js); err == nil {
			if b, err := store.GetBytes(ctx, name); err == nil {
				data = b
			}
		}
	}
	info := letterInfo(h.Get(HeaderReason), h.Get(HeaderError), h.Get(HeaderEventID), m.Sequence, m.Time, data)
	if !reveal && (info.Reason == ReasonForward || m.Subject == "dlq."+ReasonForward) {
		return info, maskWebhook(data), nil
	}
	return info, MaskMessage(data, reveal), nil
}

// maskWebhook is MaskMessage for a forward dead letter, whose data is a
// Meta webhook body: message text, captions and names are redacted first,
// exactly as the capture redacts them (webhook.Redact), then the ids are
// masked. A body Redact cannot rewrite faithfully is not shown.
func maskWebhook(data []byte) json.RawMessage {
	red, err := webhook.Redact(new(fastjson.Parser), data)
	if err != nil {
		b, _ := json.Marshal(fmt.Sprintf("(%d bytes, not strict JSON, so not redactable; reveal to see them)", len(data)))
		return b
	}
	return MaskMessage(red, false)
}

// personalKeys are the JSON keys whose values MaskMessage hides.
var personalKeys = map[string]bool{
	"user_id": true, "ctwa_clid": true, "wa_id": true, "bsuid": true, "psid": true, "igsid": true,
	"phone": true, "phone_number": true, "from": true, "recipient_id": true, "sender_id": true,
}

// MaskMessage returns data as JSON with the values of personal keys (at any
// depth) cut to their last 4 characters ("…1234"); with reveal, data as it
// is. Data that is not JSON becomes a JSON string, masked whole.
func MaskMessage(data []byte, reveal bool) json.RawMessage {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		if reveal {
			b, _ := json.Marshal(string(data))
			return b
		}
		b, _ := json.Marshal(fmt.Sprintf("(%d bytes, not JSON; reveal to see them)", len(data)))
		return b
	}
	if reveal {
		return json.RawMessage(data)
	}
	b, _ := json.Marshal(mask(v))
	return b
}

func mask(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && personalKeys[strings.ToLower(k)] {
				x[k] = maskID(s)
				continue
			}
			x[k] = mask(e)
		}
	case []any:
		for i := range x {
			x[i] = mask(x[i])
		}
	}
	return v
}

// maskID keeps the last 4 characters of id.
func maskID(id string) string {
	r := []rune(id)
	if len(r) <= 4 {
		return "…"
	}
	return "…" + string(r[len(r)-4:])
}

// PrintDeadLetters writes letters as the table of sender dlq list.
func PrintDeadLetters(w io.Writer, letters []DeadLetterInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tREASON\tBUSINESS\tEVENT_ID\tERROR")
	for _, l := range letters {
		text := l.Error
		if len(text) > 80 {
			text = strings.ToValidUTF8(text[:80], "") + "…"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", l.Seq, l.Time.Format(time.RFC3339), l.Reason, l.BusinessID, l.EventID, text)
	}
	tw.Flush()
}
