package conversion

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// parsers holds fastjson parsers, which are not safe for concurrent use; a
// pool is how fastjson means them to be shared. The sender parses every
// message with one, so allocating a parser per message would cost.
var parsers fastjson.ParserPool

// Parse decodes and validates one message. The message must be JSON as RFC
// 8259 defines it: no NaN or Infinity, no numbers like 1-2, no raw control
// characters in strings, valid UTF-8. (fastjson, which decodes it, is more
// lenient; such a message would pass it and fail at Meta, forever.) Unknown
// fields are ignored. With an error, the Conversion holds what could be read
// (for a dead letter's headers and the channel label), and the error is an
// *Error.
func Parse(data []byte) (Conversion, error) {
	p := parsers.Get()
	defer parsers.Put(p)
	if err := checkJSON("", data); err != nil {
		return bestEffort(p, data), err
	}
	v, err := p.ParseBytes(data)
	if err != nil { // valid JSON that fastjson refuses: nested too deeply
		return Conversion{}, invalid("", "not JSON: nested too deeply")
	}
	if v.Type() != fastjson.TypeObject {
		return Conversion{}, invalid("", "not a JSON object")
	}
	var c Conversion
	r := reader{v: v}
	c.EventID = r.str("event_id", true)
	c.EventName = r.str("event_name", true)
	c.Channel = r.str("channel", true)
	c.BusinessID = r.str("business_id", true)
	c.CtwaClid = r.str("ctwa_clid", false)
	c.UserID = r.str("user_id", c.CtwaClid == "")
	c.DatasetID = r.str("dataset_id", false)
	if r.err != nil {
		return c, r.err
	}
	if err := c.checkLengths(); err != nil {
		return c, err
	}
	if t := r.integer("event_time"); t != nil {
		if *t <= 0 {
			return c, invalid("event_time", "must be unix seconds (a positive integer)")
		}
		c.EventTime = *t
	}
	cd := v.Get("custom_data")
	if cd != nil && cd.Type() == fastjson.TypeNull {
		cd = nil
	}
	if cd != nil {
		if cd.Type() != fastjson.TypeObject {
			return c, invalid("custom_data", "must be a JSON object")
		}
		c.CustomData = appendJSON(nil, cd)
	}
	if f := v.Get("data_processing_options"); f != nil && f.Type() != fastjson.TypeNull {
		errDPO := invalid("data_processing_options", `must be an array of strings: [] or ["LDU"]`)
		arr, err := f.Array()
		if err != nil {
			return c, errDPO
		}
		c.DataProcessingOptions = make([]string, 0, len(arr))
		for _, e := range arr {
			b, err := e.StringBytes()
			if err != nil {
				return c, errDPO
			}
			c.DataProcessingOptions = append(c.DataProcessingOptions, string(b))
		}
	}
	c.DataProcessingOptionsCountry = intPtr(r.integer("data_processing_options_country"))
	c.DataProcessingOptionsState = intPtr(r.integer("data_processing_options_state"))
	if r.err != nil {
		return c, r.err
	}
	if path, bad := overflow(v); bad {
		return c, errOverflow(path)
	}
	return c, c.check(cd)
}

// errOverflow names the field of a number too large for a float64.
func errOverflow(field string) *Error {
	return invalid(field, "number too large for a 64-bit float (beyond ±1.8e308): Meta would read it as infinity")
}

// overflow reports the path (below v: "custom_data.value",
// "custom_data.contents[0].quantity") of a number that overflows a float64,
// as 1e400 does: valid JSON, which every JSON reader on the way to Meta
// would take as infinity or refuse. Such a number needs an exponent or
// more than 308 digits, so others are not parsed.
func overflow(v *fastjson.Value) (string, bool) {
	switch v.Type() {
	case fastjson.TypeNumber:
		var buf [64]byte
		raw := v.MarshalTo(buf[:0])
		if len(raw) <= 308 && !bytes.ContainsAny(raw, "eE") {
			return "", false
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		return "", err != nil && math.IsInf(f, 0)
	case fastjson.TypeObject:
		var path string
		var bad bool
		v.GetObject().Visit(func(k []byte, e *fastjson.Value) {
			if bad {
				return
			}
			if sub, ok := overflow(e); ok {
				path, bad = string(k), true
				if sub != "" {
					if sub[0] != '[' {
						path += "."
					}
					path += sub
				}
			}
		})
		return path, bad
	case fastjson.TypeArray:
		for i, e := range v.GetArray() {
			if sub, ok := overflow(e); ok {
				path := "[" + strconv.Itoa(i) + "]"
				if sub != "" && sub[0] != '[' {
					path += "."
				}
				return path + sub, true
			}
		}
	}
	return "", false
}

// bestEffort reads event_id and channel of a message that is not JSON but
// that fastjson's leniency may still read, so that its dead letter names
// the event.
func bestEffort(p *fastjson.Parser, data []byte) Conversion {
	v, err := p.ParseBytes(data)
	if err != nil {
		return Conversion{}
	}
	var c Conversion
	if id := v.GetStringBytes("event_id"); len(id) <= MaxEventIDLen {
		c.EventID = string(id)
	}
	if ch := string(v.GetStringBytes("channel")); IsChannel(ch) {
		c.Channel = ch
	}
	return c
}

// reader reads typed fields of a JSON object and keeps the first error.
type reader struct {
	v   *fastjson.Value
	err error
}

func (r *reader) str(field string, required bool) string {
	f := r.v.Get(field)
	if f == nil || f.Type() == fastjson.TypeNull {
		if required && r.err == nil {
			r.err = invalid(field, "missing")
		}
		return ""
	}
	b, err := f.StringBytes()
	if err != nil && r.err == nil {
		r.err = invalid(field, "must be a string")
	}
	return string(b)
}

// integer reads an optional integer field: nil when absent or null.
func (r *reader) integer(field string) *int64 {
	f := r.v.Get(field)
	if f == nil || f.Type() == fastjson.TypeNull {
		return nil
	}
	x, err := f.Float64()
	if err != nil || f.Type() != fastjson.TypeNumber || x != math.Trunc(x) || math.Abs(x) > 1<<53 {
		if r.err == nil {
			r.err = invalid(field, "must be an integer")
			if field == "event_time" {
				r.err = invalid(field, "must be an integer (unix seconds)")
			}
		}
		return nil
	}
	n := int64(x)
	return &n
}

func intPtr(p *int64) *int {
	if p == nil {
		return nil
	}
	n := int(*p)
	return &n
}

// checkJSON reports whether data is JSON by RFC 8259, naming field (""
// for the whole message) and the byte offset of a syntax error, never
// the bytes themselves.
func checkJSON(field string, data []byte) error {
	if !json.Valid(data) {
		var raw json.RawMessage
		err := json.Unmarshal(data, &raw)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return invalid(field, "not JSON: syntax error at byte "+strconv.FormatInt(se.Offset, 10)+
				" (JSON has no NaN or Infinity, no numbers like 1-2, no raw control characters in strings)")
		}
		return invalid(field, "not JSON")
	}
	if !utf8.Valid(data) {
		return invalid(field, "not JSON: invalid UTF-8")
	}
	return nil
}
