package capi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/ctmpipe/ctmpipe/pkg/jsonenc"
)

// appendEventsBody appends the JSON body of an /events request: what
// json.Marshal(eventsBody{...}) writes, byte for byte (FuzzAppendEventsBody
// checks it), without reflection and into a buffer the caller reuses.
// encoding/json was a tenth of the sender's CPU, a third of it compacting
// custom_data again. CustomData must be a JSON object or empty; compact JSON
// (as the sender's parser produces) is copied as it is.
func appendEventsBody(b []byte, events []Event, partnerAgent, testEventCode string) ([]byte, error) {
	b = append(b, `{"data":[`...)
	for i := range events {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendEvent(b, &events[i]); err != nil {
			return nil, &EncodeError{Index: i, Err: err}
		}
	}
	b = append(b, ']')
	if partnerAgent != "" {
		b = appendStringField(b, "partner_agent", partnerAgent)
	}
	if testEventCode != "" {
		b = appendStringField(b, "test_event_code", testEventCode)
	}
	return append(b, '}'), nil
}

// EncodeError is an event that cannot be encoded: its custom_data is not
// JSON. Sending it again can never succeed, so a caller gives it up (the
// sender dead-letters it as invalid) instead of retrying.
type EncodeError struct {
	Index int // the event's index in the batch
	Err   error
}

func (e *EncodeError) Error() string {
	return "event " + strconv.Itoa(e.Index) + ": " + e.Err.Error()
}

func (e *EncodeError) Unwrap() error { return e.Err }

var errCustomData = errors.New("custom_data is not valid JSON")

func appendEvent(b []byte, e *Event) ([]byte, error) {
	b = append(b, `{"event_name":`...)
	b = jsonenc.AppendString(b, e.EventName)
	b = append(b, `,"event_time":`...)
	b = strconv.AppendInt(b, e.EventTime, 10)
	if e.EventID != "" {
		b = appendStringField(b, "event_id", e.EventID)
	}
	b = appendStringField(b, "action_source", e.ActionSource)
	b = appendStringField(b, "messaging_channel", e.MessagingChannel)
	b = append(b, `,"user_data":{`...)
	n := len(b)
	u := &e.UserData
	for _, f := range [...]struct{ name, v string }{
		{"whatsapp_business_account_id", u.WhatsAppBusinessAccountID},
		{"ctwa_clid", u.CtwaClid},
		{"page_id", u.PageID},
		{"page_scoped_user_id", u.PageScopedUserID},
		{"instagram_business_account_id", u.InstagramBusinessAccountID},
		{"ig_sid", u.IGSID},
	} {
		if f.v != "" {
			b = appendStringField(b, f.name, f.v)
		}
	}
	if len(b) > n {
		b = append(b[:n], b[n+1:]...) // the first field's leading comma
	}
	b = append(b, '}')
	if len(e.CustomData) > 0 {
		b = append(b, `,"custom_data":`...)
		var err error
		if b, err = appendRawJSON(b, e.CustomData); err != nil {
			return nil, err
		}
	}
	if len(e.DataProcessingOptions) > 0 {
		b = append(b, `,"data_processing_options":[`...)
		for i, o := range e.DataProcessingOptions {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, o)
		}
		b = append(b, ']')
	}
	if e.DataProcessingOptionsCountry != nil {
		b = append(b, `,"data_processing_options_country":`...)
		b = strconv.AppendInt(b, int64(*e.DataProcessingOptionsCountry), 10)
	}
	if e.DataProcessingOptionsState != nil {
		b = append(b, `,"data_processing_options_state":`...)
		b = strconv.AppendInt(b, int64(*e.DataProcessingOptionsState), 10)
	}
	return append(b, '}'), nil
}

// appendRawJSON appends raw as json.Marshal writes a json.RawMessage:
// validated, compacted, with <, > and & (and U+2028, U+2029) escaped.
// Compact raw JSON without those characters, the usual case, is copied.
func appendRawJSON(b, raw []byte) ([]byte, error) {
	if !json.Valid(raw) {
		return nil, errCustomData
	}
	if !needsCompact(raw) {
		return append(b, raw...), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, errCustomData
	}
	var esc bytes.Buffer
	json.HTMLEscape(&esc, buf.Bytes())
	return append(b, esc.Bytes()...), nil
}

// needsCompact reports whether raw has bytes json.Marshal would rewrite:
// whitespace (outside strings, but inside is rare enough to take the slow
// path too), <, > or &, or the first byte of U+2028 and U+2029.
func needsCompact(raw []byte) bool {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r', '<', '>', '&', 0xE2:
			return true
		}
	}
	return false
}

func appendStringField(b []byte, name, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return jsonenc.AppendString(b, v)
}
