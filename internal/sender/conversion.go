package sender

import (
	"math"

	"github.com/valyala/fastjson"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// maxEventID is the longest event_id accepted.
const maxEventID = 256

// maxID bounds business and user ids, like the attribution store does: an id
// that cannot have a stored context is invalid at once rather than
// unattributed after CONTEXT_WAIT. It fits a WhatsApp BSUID (131).
const maxID = attribution.MaxIDLen

// eventNames are the event names of the contract with order systems.
var eventNames = map[string]bool{
	"Purchase": true, "LeadSubmitted": true, "InitiateCheckout": true, "AddToCart": true,
	"ViewContent": true, "OrderCreated": true, "OrderShipped": true,
}

// conversion is a valid message of the CONVERSIONS stream.
type conversion struct {
	EventID    string
	EventName  string
	EventTime  int64 // unix seconds; 0 when the message has none
	Channel    string
	BusinessID string // WABA id or phone_number_id, page id, IG account id
	UserID     string // personal data
	DatasetID  string
	CustomData []byte // a JSON object, or nil
}

// invalidError says which rule a message breaks. It names fields, never
// values, so it is safe to log and to put in a dead letter's header.
type invalidError struct{ field, reason string }

func (e *invalidError) Error() string {
	if e.field == "" {
		return e.reason
	}
	return e.field + ": " + e.reason
}

func invalid(field, reason string) error { return &invalidError{field, reason} }

// parseConversion decodes and validates one message with p, which the
// caller owns (fastjson parsers are not safe for concurrent use). With an
// error, the conversion holds what could be read (for the dead letter's
// headers and the channel label).
func parseConversion(p *fastjson.Parser, data []byte) (conversion, error) {
	v, err := p.ParseBytes(data)
	if err != nil {
		return conversion{}, invalid("", "not JSON")
	}
	if v.Type() != fastjson.TypeObject {
		return conversion{}, invalid("", "not a JSON object")
	}
	var c conversion
	var bad error
	str := func(field string, required bool, maxLen int) string {
		f := v.Get(field)
		if f == nil || f.Type() == fastjson.TypeNull {
			if required && bad == nil {
				bad = invalid(field, "missing")
			}
			return ""
		}
		b, err := f.StringBytes()
		switch {
		case err != nil:
			bad = firstErr(bad, invalid(field, "must be a string"))
		case len(b) == 0 && required:
			bad = firstErr(bad, invalid(field, "empty"))
		case len(b) > maxLen:
			bad = firstErr(bad, invalid(field, "too long"))
		}
		return string(b)
	}
	c.EventID = str("event_id", true, maxEventID)
	c.EventName = str("event_name", true, 64)
	c.Channel = str("channel", true, 16)
	c.BusinessID = str("business_id", true, maxID)
	c.UserID = str("user_id", true, maxID)
	c.DatasetID = str("dataset_id", false, maxID)
	if bad != nil {
		return c, bad
	}
	switch {
	case hasControl(c.EventID):
		return c, invalid("event_id", "must not contain control characters")
	case !eventNames[c.EventName]:
		return c, invalid("event_name", "not one of Purchase, LeadSubmitted, InitiateCheckout, AddToCart, ViewContent, OrderCreated, OrderShipped")
	case c.Channel != attribution.WhatsApp && c.Channel != attribution.Messenger && c.Channel != attribution.Instagram:
		return c, invalid("channel", "must be whatsapp, messenger or instagram")
	case !plainID(c.BusinessID):
		return c, invalid("business_id", "must be printable ASCII without ':', '{' or '}'")
	case !plainID(c.UserID):
		return c, invalid("user_id", "must be printable ASCII without ':', '{' or '}'")
	case c.DatasetID != "" && !plainID(c.DatasetID):
		return c, invalid("dataset_id", "must be printable ASCII without ':', '{' or '}'")
	}
	if t := v.Get("event_time"); t != nil && t.Type() != fastjson.TypeNull {
		f, err := t.Float64()
		switch {
		case err != nil || f != math.Trunc(f):
			return c, invalid("event_time", "must be an integer (unix seconds)")
		case f <= 0 || f > 1e11:
			return c, invalid("event_time", "must be unix seconds (not milliseconds)")
		}
		c.EventTime = int64(f)
	}
	if cd := v.Get("custom_data"); cd != nil && cd.Type() != fastjson.TypeNull {
		if cd.Type() != fastjson.TypeObject {
			return c, invalid("custom_data", "must be a JSON object")
		}
		if c.EventName == "Purchase" {
			if err := checkPurchase(cd); err != nil {
				return c, err
			}
		}
		c.CustomData = cd.MarshalTo(nil)
	} else if c.EventName == "Purchase" {
		return c, invalid("custom_data", "Purchase needs currency and value")
	}
	return c, nil
}

func checkPurchase(cd *fastjson.Value) error {
	cur := cd.GetStringBytes("currency")
	if len(cur) != 3 || !letters(cur) {
		return invalid("custom_data.currency", "Purchase needs a three-letter currency code")
	}
	if v := cd.Get("value"); v == nil || v.Type() != fastjson.TypeNumber {
		return invalid("custom_data.value", "Purchase needs a numeric value")
	}
	return nil
}

func letters(b []byte) bool {
	for _, c := range b {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// plainID matches the ids the attribution store can key: printable ASCII
// without ':' (key separator) or braces (Redis Cluster hash tags).
func plainID(id string) bool {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == ':' || c == '{' || c == '}' {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
