package attribution

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
)

// Stored representation.
//
// A context is one Redis string (not a hash: a 100-char ctwa_clid exceeds
// hash-max-listpack-value, and a hashtable-encoded hash costs ~750 bytes) at
//
//	c:{<channel letter>:<business id>:<user id>}
//
// The braces are the Redis Cluster hash tag, so every key of a conversation
// lands on one slot. Its value is packed:
//
//	[0]     kind (low four bits: formatV1) and flags (flagFirstTouch: the
//	        business keeps its first click; flagNoClickID: a WhatsApp
//	        referral without ctwa_clid, such as an ad in WhatsApp Status)
//	[1:7]   latest click, Unix milliseconds, 48-bit big-endian
//	[7:13]  first seen, Unix milliseconds, 48-bit big-endian
//	[13:]   body: ClickID, AdID, SourceType, SourceURL, Ref, in this order,
//	        trailing empty fields left out
//
// Each body field is a uvarint header h (h>>2 = length, h&3 = encoding) and
// its payload. The encodings exist because memory is the budget (≤ 300 bytes
// of used_memory per WhatsApp context). Measured on Redis 7.0 with 100-char
// ctwa_clids: a hash with one-letter fields ~765 bytes (hashtable encoding),
// a readable "ms|ms|clid|..." string ~341, this packing ~277 at 100k contexts
// and ~273 at 1M (TestMemoryPerContext). Packing the clid 4 chars → 3 bytes
// is what brings the value into jemalloc's 128-byte class; the rest of the
// cost is Redis's own per-key overhead (dict entries, key, robj, expiry).
// Times sit at fixed offsets and compare as unsigned big-endian numbers, so the
// Lua upsert reads them without decoding the body. Encoding is deterministic,
// so equal clicks have equal bytes. The format is append-only: a change needs
// a new version byte and is caught by testdata/stored.golden. The flags cost
// no byte: a last-touch context with a click id is stored exactly as before
// they existed.
//
// Under first touch [1:7] is the time of the click kept (the first), so
// both policies read one layout; "latest click" is the click reported.
//
// A key may instead hold an alias, written when WhatsApp says the user's id
// changed (idchange.go): [0] formatAlias (with flagNoClickID copied from the
// context it names), then the user id whose context the conversation is,
// under the same channel and business.
const (
	formatV1       = 1
	formatAlias    = 2
	flagFirstTouch = 0x10
	flagNoClickID  = 0x20
	kindMask       = 0x0f
	headerSize     = 13
	maxMillis      = 1<<48 - 1 // year 10889
	maxField       = 4096      // bytes per click field; Meta's are far shorter
)

// Field encodings (the low two bits of a field header).
const (
	encRaw     = iota // n bytes
	encBase64         // n base64url characters packed 4 → 3 bytes
	encDecimal        // n decimal digits, no leading zero, as one uvarint
	encPrefix         // a urlPrefixes index byte, then the n remaining bytes
)

// urlPrefixes are the beginnings of Meta's source_url values. Append only:
// stored values refer to them by index.
var urlPrefixes = [...]string{
	"https://fb.me/",
	"https://www.facebook.com/",
	"https://www.instagram.com/",
}

var errCorrupt = errors.New("stored context is corrupt")

// clickFields are the click fields of a context in stored order.
type clickFields [5]*string

func (c *Context) fields() clickFields {
	return clickFields{&c.ClickID, &c.AdID, &c.SourceType, &c.SourceURL, &c.Ref}
}

// encodeContext packs c. Times must be within [0, maxMillis].
func encodeContext(c *Context) []byte {
	b := make([]byte, headerSize, headerSize+len(c.ClickID)+len(c.SourceURL)+len(c.Ref)+len(c.AdID)+len(c.SourceType)+10)
	b[0] = formatV1
	if c.FirstTouch {
		b[0] |= flagFirstTouch
	}
	if c.NoClickID {
		b[0] |= flagNoClickID
	}
	putUint48(b[1:7], uint64(c.LastSeen.UnixMilli()))
	putUint48(b[7:13], uint64(c.FirstSeen.UnixMilli()))
	fs := c.fields()
	n := len(fs)
	for n > 0 && *fs[n-1] == "" {
		n--
	}
	for _, f := range fs[:n] {
		b = appendField(b, *f)
	}
	return b
}

// decodeContext unpacks v into c, whose Key the caller sets.
func decodeContext(v string, c *Context) error {
	if len(v) < headerSize || v[0]&kindMask != formatV1 || v[0]&^(kindMask|flagFirstTouch|flagNoClickID) != 0 {
		return errCorrupt
	}
	c.FirstTouch, c.NoClickID = v[0]&flagFirstTouch != 0, v[0]&flagNoClickID != 0
	c.LastSeen = millisTime(getUint48(v[1:7]))
	c.FirstSeen = millisTime(getUint48(v[7:13]))
	rest := v[headerSize:]
	for _, f := range c.fields() {
		if rest == "" {
			*f = ""
			continue
		}
		s, n, err := readField(rest)
		if err != nil {
			return err
		}
		*f, rest = s, rest[n:]
	}
	if rest != "" {
		return errCorrupt
	}
	return nil
}

// encodeAlias packs an alias to the conversation of user id target;
// noClickID copies that context's flag, which the upsert needs without
// reading the context (a click id beats none).
func encodeAlias(target string, noClickID bool) string {
	b := byte(formatAlias)
	if noClickID {
		b |= flagNoClickID
	}
	return string(b) + target
}

// aliasTarget returns the user id an alias value names, and false when v is
// not an alias.
func aliasTarget(v string) (string, bool) {
	if len(v) < 2 || v[0]&kindMask != formatAlias {
		return "", false
	}
	return v[1:], true
}

// appendField appends s in its smallest encoding (raw on a tie).
func appendField(b []byte, s string) []byte {
	n := uint64(len(s))
	if d, ok := decimal(s); ok && uvarintLen(d) < len(s) {
		b = binary.AppendUvarint(b, n<<2|encDecimal)
		return binary.AppendUvarint(b, d)
	}
	if isBase64URL(s) && (len(s)+3)/4*3 < len(s) {
		b = binary.AppendUvarint(b, n<<2|encBase64)
		// Cannot fail: the alphabet was checked and the groups are whole.
		b, _ = base64.RawURLEncoding.AppendDecode(b, []byte(padBase64(s)))
		return b
	}
	for i, p := range urlPrefixes {
		if rest, ok := strings.CutPrefix(s, p); ok {
			b = binary.AppendUvarint(b, uint64(len(rest))<<2|encPrefix)
			b = append(b, byte(i))
			return append(b, rest...)
		}
	}
	b = binary.AppendUvarint(b, n<<2|encRaw)
	return append(b, s...)
}

// readField decodes the field at the start of v and returns it and the number
// of bytes it took.
func readField(v string) (string, int, error) {
	h, hn := binary.Uvarint([]byte(v[:min(len(v), binary.MaxVarintLen64)]))
	if hn <= 0 || h>>2 > maxField {
		return "", 0, errCorrupt
	}
	n, p := int(h>>2), v[hn:]
	switch h & 3 {
	case encRaw:
		if len(p) < n {
			return "", 0, errCorrupt
		}
		return p[:n], hn + n, nil
	case encBase64:
		m := (n + 3) / 4 * 3
		if len(p) < m {
			return "", 0, errCorrupt
		}
		return base64.RawURLEncoding.EncodeToString([]byte(p[:m]))[:n], hn + m, nil
	case encDecimal:
		d, dn := binary.Uvarint([]byte(p[:min(len(p), binary.MaxVarintLen64)]))
		s := strconv.FormatUint(d, 10)
		if dn <= 0 || len(s) != n {
			return "", 0, errCorrupt
		}
		return s, hn + dn, nil
	default: // encPrefix
		if len(p) < 1+n || int(p[0]) >= len(urlPrefixes) {
			return "", 0, errCorrupt
		}
		return urlPrefixes[p[0]] + p[1:1+n], hn + 1 + n, nil
	}
}

// decimal parses s when it is the canonical decimal form of a uint64.
func decimal(s string) (uint64, bool) {
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	d, err := strconv.ParseUint(s, 10, 64)
	return d, err == nil
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// padBase64 pads s with 'A' (zero bits) to whole 4-character groups, which
// decode to whole bytes with no bits lost, so any base64url-alphabet string
// round-trips exactly (the stored length drops the padding again).
func padBase64(s string) string {
	if r := len(s) % 4; r != 0 {
		return s + "AAA"[:4-r]
	}
	return s
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

func putUint48(b []byte, v uint64) {
	for i := 5; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func getUint48(s string) uint64 {
	var v uint64
	for i := 0; i < 6; i++ {
		v = v<<8 | uint64(s[i])
	}
	return v
}
