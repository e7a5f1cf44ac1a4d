package trail

import (
	"strconv"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/jsonenc"
)

// appendJSON appends r as encoding/json would marshal it (the same keys,
// order and omissions; TestAppendJSONMatchesMarshal), without reflection:
// the sender writes one record per event, on its hot path. Without ids it
// leaves out business_id and event_id: what is stored, whose hash key and
// field are the two already (Read puts them back), a fifth of a sent
// record that Redis would otherwise keep twice.
func (r *Record) appendJSON(b []byte, ids bool) []byte {
	b = append(b, '{')
	if ids {
		b = append(b, `"business_id":`...)
		b = jsonenc.AppendString(b, r.BusinessID)
		b = append(b, `,"event_id":`...)
		b = jsonenc.AppendString(b, r.EventID)
		b = append(b, ',')
	}
	b = append(b, `"state":`...)
	b = jsonenc.AppendString(b, r.State)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendUint(b, r.Attempts, 10)
	b = append(b, `,"first_seen_at":`...)
	b = appendTime(b, r.FirstSeenAt.Time)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, r.UpdatedAt.Time)
	if r.EventName != "" {
		b = append(b, `,"event_name":`...)
		b = jsonenc.AppendString(b, r.EventName)
	}
	if r.Channel != "" {
		b = append(b, `,"channel":`...)
		b = jsonenc.AppendString(b, r.Channel)
	}
	if s := r.Sent; s != nil {
		b = append(b, `,"sent":{"dataset_id":`...)
		b = jsonenc.AppendString(b, s.DatasetID)
		b = append(b, `,"at":`...)
		b = appendTime(b, s.At.Time)
		if s.FBTraceID != "" {
			b = append(b, `,"fbtrace_id":`...)
			b = jsonenc.AppendString(b, s.FBTraceID)
		}
		b = append(b, `,"events_received":`...)
		b = strconv.AppendInt(b, int64(s.EventsReceived), 10)
		if s.RequestID != "" {
			b = append(b, `,"request_id":`...)
			b = jsonenc.AppendString(b, s.RequestID)
		}
		b = append(b, '}')
	}
	if d := r.DeadLetter; d != nil {
		b = append(b, `,"dead_letter":{"reason":`...)
		b = jsonenc.AppendString(b, d.Reason)
		b = append(b, `,"error":`...)
		b = jsonenc.AppendString(b, d.Error)
		if d.Seq != 0 {
			b = append(b, `,"seq":`...)
			b = strconv.AppendUint(b, d.Seq, 10)
		}
		b = append(b, '}')
	}
	if r.RetryAt != nil {
		b = append(b, `,"retry_at":`...)
		b = appendTime(b, r.RetryAt.Time)
	}
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = jsonenc.AppendString(b, r.Reason)
	}
	return append(b, '}')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"')
}
