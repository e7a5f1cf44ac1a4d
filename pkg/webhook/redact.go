package webhook

import (
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// ErrNotRedactable means a body is not strict JSON. fastjson, which the hot
// path parses with, also takes a few things JSON does not (NaN, Inf, bare
// "-"); such a body could not be written back faithfully, and publishing it
// unredacted is never an option.
var ErrNotRedactable = errors.New("webhook: redact: body is not strict JSON")

// RedactedText replaces personal free text in redacted bodies.
const RedactedText = "[redacted]"

// Redact returns body with personal free text replaced by "[redacted]":
// message text bodies (WhatsApp text.body and system.body, Messenger/Instagram message.text,
// button texts), media captions, comment messages, contact profile names
// and user names. docs/contract.md says message text and names are never stored,
// and the capture stream is storage; dead letters of forwarding (which hold
// Meta's bodies) are shown redacted the same way. This is safe for replay: replay
// re-signs each body, and no field webhook.Parse reads is touched (ids,
// timestamps and referrals stay as received).
//
// The output is written here, not with fastjson's MarshalTo, because that
// quotes strings with Go's rules (\x07, \U000e0067), which are not JSON: a
// headline holding `\"` and an emoji flag made a capture replay refused.
// Strings are written with JSON escapes for '"', '\' and control characters
// and every other byte as received, so the output is valid JSON for every
// valid input and every string reads back with the same bytes.
func Redact(p *fastjson.Parser, body []byte) ([]byte, error) {
	if !json.Valid(body) {
		return nil, ErrNotRedactable
	}
	v, err := p.ParseBytes(body)
	if err != nil {
		return nil, ErrNotRedactable // nested deeper than fastjson takes
	}
	return appendRedacted(make([]byte, 0, len(body)), v, ""), nil
}

// appendRedacted appends v, whose key in its parent object is parent, with
// personal text replaced. Every occurrence of a duplicated key is redacted.
func appendRedacted(dst []byte, v *fastjson.Value, parent string) []byte {
	switch v.Type() {
	case fastjson.TypeObject:
		dst = append(dst, '{')
		first := true
		v.GetObject().Visit(func(k []byte, cv *fastjson.Value) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			key := string(k)
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			if cv.Type() == fastjson.TypeString && personalText(parent, key) {
				dst = appendJSONString(dst, []byte(RedactedText))
				return
			}
			dst = appendRedacted(dst, cv, key)
		})
		return append(dst, '}')
	case fastjson.TypeArray:
		dst = append(dst, '[')
		for i, e := range v.GetArray() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendRedacted(dst, e, parent)
		}
		return append(dst, ']')
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return appendJSONString(dst, b)
	}
	// Numbers are kept as written (the input is strict JSON); true, false
	// and null have one spelling.
	return v.MarshalTo(dst)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: '"', '\' and the control
// characters escaped, every other byte as is (invalid UTF-8 included, so
// that a replayed body is refused or accepted exactly as the original was).
// U+2028 and U+2029 are escaped too, for consumers that embed JSON in
// JavaScript.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRune(s[i:])
			if r != '\u2028' && r != '\u2029' {
				i += n
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xf])
			i += n
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// personalText reports whether the string under key, inside an object that
// is itself under parent, is free text a person wrote or a person's name.
func personalText(parent, key string) bool {
	switch key {
	case "text", "caption", "message", "username":
		// Messenger/Instagram message.text, WhatsApp button.text, media
		// captions, feed comment messages, Instagram user names.
		return true
	case "body":
		// WhatsApp text.body (not the ad's referral.body), and a system
		// message's body: "User <name> changed from <old> to <new>".
		return parent == "text" || parent == "system"
	case "name":
		return parent == "profile" // WhatsApp contacts[].profile.name
	}
	return false
}
