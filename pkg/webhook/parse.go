package webhook

import (
	"math"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// Parsing is the hot path of ingest: with encoding/json, decoding a webhook
// into structs was ~90% of a naive handler's CPU. fastjson builds a tree of
// raw values without unescaping strings or converting numbers, and the code
// below only converts the handful of fields a Touch needs. The tree lives in
// the parser's arena, which the next Parse reuses, so every string that leaves
// this package is copied out of it (see concat).

// parsers holds reusable fastjson parsers. It is the package's only shared
// state; a Parser is not safe for concurrent use, the pool hands each call
// its own.
var parsers = sync.Pool{New: func() any { return new(fastjson.Parser) }}

// maxPooledBody is the largest body whose parser goes back to the pool: a
// parser keeps its buffers, and one huge delivery should not pin them.
const maxPooledBody = 1 << 20

// Object values of the payloads this package reads.
const (
	objectPage     = "page"
	objectIG       = "instagram"
	objectWhatsApp = "whatsapp_business_account"
	objectOnPrem   = "onprem"
)

// Parse extracts the ad clicks from a Meta webhook body (Messenger "page",
// "instagram" or WhatsApp Cloud API "whatsapp_business_account"). A body that
// is not a JSON object returns ErrNotJSON. Any other JSON, however odd, yields
// a Payload and a nil error: unknown objects have an empty Channel.
//
// Every event the payload carries is counted once: as a Touch, as an
// AutomaticEvent, as an IDChange, as Ignored or as Malformed. Elements that are not even shaped like events (an entry that
// is not an object, "messaging" that is not an array) count as Malformed.
func Parse(body []byte) (Payload, error) {
	p := parsers.Get().(*fastjson.Parser)
	defer putParser(p, len(body))
	root, err := p.ParseBytes(body)
	// fastjson's error text quotes the body, which may hold personal data:
	// callers get the bare sentinel.
	if err != nil || root.Type() != fastjson.TypeObject {
		return Payload{}, ErrNotJSON
	}
	var pl Payload
	object, _ := str(root, "object")
	switch string(object) {
	case objectPage:
		pl.Object, pl.Channel = objectPage, Messenger
		pl.parseMessaging(root)
	case objectIG:
		pl.Object, pl.Channel = objectIG, Instagram
		pl.parseMessaging(root)
	case objectWhatsApp:
		pl.Object, pl.Channel = objectWhatsApp, WhatsApp
		pl.parseCloud(root)
	default:
		// Unknown objects are the caller's to count; the name is copied out
		// of the arena.
		pl.Object = string(object)
	}
	return pl, nil
}

// ParseOnPrem extracts the ad clicks from a WhatsApp On-Premises delivery
// (top-level "contacts" and "messages"). Such deliveries carry no WABA id, so
// wabaID (configured by the operator) becomes every Touch's BusinessID; with
// an empty wabaID the Touches have an empty BusinessID for the caller to fill.
// The Payload's Object is "onprem".
func ParseOnPrem(body []byte, wabaID string) (Payload, error) {
	p := parsers.Get().(*fastjson.Parser)
	defer putParser(p, len(body))
	root, err := p.ParseBytes(body)
	if err != nil || root.Type() != fastjson.TypeObject {
		return Payload{}, ErrNotJSON
	}
	pl := Payload{Object: objectOnPrem, Channel: WhatsApp}
	pl.parseValue(root, waScope{wabaID: wabaID, onPrem: true, ok: true})
	return pl, nil
}

func putParser(p *fastjson.Parser, n int) {
	if n <= maxPooledBody {
		parsers.Put(p)
	}
}

// str returns the bytes of the string at key in object v, still in the
// parser's arena. A missing key, a null value or a v that is not an object
// yield nil and true; a value of another type, or one that is not valid
// UTF-8, yields false.
func str(v *fastjson.Value, key string) ([]byte, bool) {
	if v == nil || v.Type() != fastjson.TypeObject {
		return nil, true
	}
	f := v.Get(key)
	if f == nil {
		return nil, true
	}
	switch f.Type() {
	case fastjson.TypeNull:
		return nil, true
	case fastjson.TypeString:
		b, _ := f.StringBytes()
		if !utf8.Valid(b) {
			return nil, false
		}
		return b, true
	}
	return nil, false
}

// arr returns the array at key in object v. A missing key or a null value
// yield nil and true; a value of another type yields false.
func arr(v *fastjson.Value, key string) ([]*fastjson.Value, bool) {
	if v == nil || v.Type() != fastjson.TypeObject {
		return nil, true
	}
	f := v.Get(key)
	if f == nil || f.Type() == fastjson.TypeNull {
		return nil, true
	}
	a, err := f.Array()
	return a, err == nil
}

// isObject reports whether v is a JSON object.
func isObject(v *fastjson.Value) bool {
	return v != nil && v.Type() == fastjson.TypeObject
}

// present reports whether v holds something other than null.
func present(v *fastjson.Value) bool {
	return v != nil && v.Type() != fastjson.TypeNull
}

// integer reads a non-negative integer given as a JSON number or a decimal
// string (WhatsApp sends timestamps as strings, Messenger as numbers). It
// reports false when v is missing or holds anything else.
func integer(v *fastjson.Value) (int64, bool) {
	if v == nil {
		return 0, false
	}
	switch v.Type() {
	case fastjson.TypeNumber:
		if n, err := v.Int64(); err == nil {
			return n, n >= 0
		}
		// Exponent or fraction: accept it when it is a whole number in range.
		f, err := v.Float64()
		if err != nil || f < 0 || f >= math.MaxInt64 || f != math.Trunc(f) {
			return 0, false
		}
		return int64(f), true
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return decimal(b)
	}
	return 0, false
}

// decimal parses unsigned decimal digits without allocating.
func decimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 { // 18 digits cannot overflow int64
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// concat copies parts out of the parser's arena in one allocation. A Touch's
// strings share its lifetime, so they share a backing array too: this takes
// Parse from one allocation per field to one per Touch.
func concat(parts ...[]byte) string {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, p := range parts {
		sb.Write(p)
	}
	return sb.String()
}

// cut splits the first n bytes off s.
func cut(s string, n int) (string, string) {
	return s[:n], s[n:]
}
