package conversion

import (
	"github.com/valyala/fastjson"

	"github.com/ctmpipe/ctmpipe/pkg/jsonenc"
)

// appendJSON appends v as compact JSON, escaping strings as encoding/json
// does (so that pkg/capi copies custom_data as it is). fastjson's own
// MarshalTo is not used: it quotes strings holding a quote, a backslash or
// a control character with strconv.AppendQuote, whose \x01 and \a are not
// JSON, so such custom_data would fail at every send.
func appendJSON(b []byte, v *fastjson.Value) []byte {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		b = append(b, '{')
		first := true
		o.Visit(func(k []byte, e *fastjson.Value) {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = jsonenc.AppendString(b, k)
			b = append(b, ':')
			b = appendJSON(b, e)
		})
		return append(b, '}')
	case fastjson.TypeArray:
		a, _ := v.Array()
		b = append(b, '[')
		for i, e := range a {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case fastjson.TypeString:
		return jsonenc.AppendString(b, v.GetStringBytes())
	default: // numbers as written (valid: Parse checked the message), true, false, null
		return v.MarshalTo(b)
	}
}
