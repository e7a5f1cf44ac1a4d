package attribution

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCodecRoundTrip(t *testing.T) {
	long := strings.Repeat("x", maxField)
	tests := []struct {
		name string
		c    Context
	}{
		{"empty", Context{}},
		{"whatsapp", Context{ClickID: testClid, AdID: "120212345678901234", SourceType: "ad", SourceURL: "https://fb.me/3cr4Wqqkv"}},
		{"messenger ref only", Context{Ref: "summer:sale é"}},
		{"empty fields in the middle", Context{ClickID: "A", Ref: "r"}},
		{"leading zero stays text", Context{AdID: "0123", SourceType: "0"}},
		{"uint64 overflow stays text", Context{AdID: "18446744073709551616"}},
		{"max uint64", Context{AdID: "18446744073709551615"}},
		{"base64 lengths", Context{ClickID: "ARAkL", AdID: "ARAkLk", SourceType: "ARAkLkA", SourceURL: "ARAkLkA8", Ref: "_-_-_"}},
		{"bare prefix", Context{SourceURL: "https://fb.me/"}},
		{"other url", Context{SourceURL: "http://fb.me/x"}},
		{"binary", Context{Ref: "\x00\xff\n"}},
		{"max field", Context{ClickID: long, Ref: long}},
	}
	times := []time.Time{millisTime(0), t0.Add(123 * time.Millisecond), millisTime(maxMillis)}
	for _, tt := range tests {
		for _, tm := range times {
			in := tt.c
			in.FirstSeen, in.LastSeen = times[0], tm
			var out Context
			if err := decodeContext(string(encodeContext(&in)), &out); err != nil {
				t.Errorf("%s: decode(encode) = %v", tt.name, err)
				continue
			}
			if d := cmp.Diff(in, out); d != "" {
				t.Errorf("%s: round trip mismatch (-in +out):\n%s", tt.name, d)
			}
		}
	}
}

// The realistic WhatsApp context must stay small enough for the 128-byte
// allocator class, which is what keeps it under 300 bytes in Redis.
func TestCodecSize(t *testing.T) {
	c := touchContext(&Touch{ClickID: testClid + "x", AdID: "120212345678901234", SourceType: "ad",
		SourceURL: "https://fb.me/3cr4Wqqkv", Time: t0})
	if n := len(encodeContext(&c)); n > 124 {
		t.Errorf("packed WhatsApp context = %d bytes; want ≤ 124 (128 with the sds header)", n)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	valid := string(encodeContext(&Context{ClickID: testClid, AdID: "42", SourceURL: "https://fb.me/a"}))
	for _, v := range []string{
		"", "\x01", "\x02" + valid[1:], valid[:headerSize+3], valid + "\x00\x00", // a sixth field
		valid[:headerSize] + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
		valid[:headerSize] + "\x03\x09", // prefix index out of range
	} {
		var c Context
		if err := decodeContext(v, &c); err == nil {
			t.Errorf("decodeContext(%q) = nil; want an error", v)
		}
	}
}

func FuzzCodec(f *testing.F) {
	f.Add(testClid, "120212345678901234", "ad", "https://fb.me/3cr4Wqqkv", "", int64(1763900000000))
	f.Add("", "0", "ADS", "", "ref:x", int64(0))
	f.Fuzz(func(t *testing.T, clid, ad, typ, url, ref string, ms int64) {
		if ms < 0 || ms > maxMillis {
			return
		}
		in := Context{ClickID: clid, AdID: ad, SourceType: typ, SourceURL: url, Ref: ref,
			FirstSeen: millisTime(uint64(ms)), LastSeen: millisTime(uint64(ms))}
		for _, f := range in.fields() {
			if len(*f) > maxField {
				return
			}
		}
		b := encodeContext(&in)
		var out Context
		if err := decodeContext(string(b), &out); err != nil {
			t.Fatalf("decode(encode(%+v)) = %v", in, err)
		}
		if d := cmp.Diff(in, out); d != "" {
			t.Fatalf("round trip mismatch (-in +out):\n%s", d)
		}
		// Arbitrary bytes must never panic the decoder.
		_ = decodeContext(clid+ref, &out)
	})
}
