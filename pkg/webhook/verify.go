package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
)

// SignatureHeader is the header Meta signs deliveries with.
const SignatureHeader = "X-Hub-Signature-256"

// signaturePrefix starts every X-Hub-Signature-256 value.
const signaturePrefix = "sha256="

// Sign returns the X-Hub-Signature-256 value for body under secret:
// "sha256=" followed by the lowercase hex HMAC-SHA256 of the raw body.
// Replay tools and tests use it to produce deliveries ingest accepts.
func Sign(body, secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	var sum [sha256.Size]byte
	var out [len(signaturePrefix) + 2*sha256.Size]byte
	copy(out[:], signaturePrefix)
	hex.Encode(out[len(signaturePrefix):], m.Sum(sum[:0]))
	return string(out[:])
}

// Verify checks header (the X-Hub-Signature-256 value) against body with each
// secret in turn, in constant time. It returns ErrSignature when none matches.
//
// The header must be exactly "sha256=" and 64 lowercase hex digits, the form
// Meta and Sign produce. Uppercase hex is rejected on purpose: accepting one
// canonical spelling means any change to the header is a mismatch, and no
// sender we serve spells it otherwise. Empty secrets never match, so a stray
// comma in META_APP_SECRET cannot turn into "anyone may sign with no key".
func Verify(body []byte, header string, secrets [][]byte) error {
	var want [sha256.Size]byte
	if !decodeSignature(header, &want) {
		return ErrSignature
	}
	var sum [sha256.Size]byte
	for _, secret := range secrets {
		if len(secret) == 0 {
			continue
		}
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		if hmac.Equal(m.Sum(sum[:0]), want[:]) {
			return nil
		}
	}
	return ErrSignature
}

// Verifier verifies deliveries like Verify, for a fixed set of secrets,
// reusing keyed HMAC states between calls: setting up HMAC-SHA256 for a key
// (two SHA-256 blocks and six allocations) costs about as much as hashing a
// typical 1 KB delivery. A Verifier is safe for concurrent use.
type Verifier struct {
	macs []sync.Pool // one per non-empty secret, of *keyedMAC
}

// keyedMAC is an HMAC keyed with one secret and room for its sum (a local
// array would escape through the hash.Hash interface: one allocation a call).
type keyedMAC struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// NewVerifier returns a Verifier for secrets; empty ones never match, as
// with Verify. The secrets are copied.
func NewVerifier(secrets [][]byte) *Verifier {
	v := &Verifier{}
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		key := append([]byte(nil), s...)
		v.macs = append(v.macs, sync.Pool{New: func() any { return &keyedMAC{h: hmac.New(sha256.New, key)} }})
	}
	return v
}

// Verify is Verify(body, header, secrets) with the Verifier's secrets.
func (v *Verifier) Verify(body []byte, header string) error {
	var want [sha256.Size]byte
	if !decodeSignature(header, &want) {
		return ErrSignature
	}
	for i := range v.macs {
		m := v.macs[i].Get().(*keyedMAC)
		m.h.Reset() // back to the keyed state, whatever the last caller left
		m.h.Write(body)
		ok := hmac.Equal(m.h.Sum(m.sum[:0]), want[:])
		v.macs[i].Put(m)
		if ok {
			return nil
		}
	}
	return ErrSignature
}

// SignatureWellFormed reports whether header has the one form Verify can
// accept ("sha256=" and 64 lowercase hex digits). A receiver checks it before
// reading the body, so that a request which can never verify costs no body
// buffer.
func SignatureWellFormed(header string) bool {
	var sum [sha256.Size]byte
	return decodeSignature(header, &sum)
}

// decodeSignature decodes the hex digest of a "sha256=<hex>" header into dst
// without allocating. It reports false for anything but the canonical form.
// Branching on the header's bytes leaks nothing secret: the header is what the
// caller sent, and the comparison with the expected MAC is constant time.
func decodeSignature(header string, dst *[sha256.Size]byte) bool {
	if len(header) != len(signaturePrefix)+2*sha256.Size || header[:len(signaturePrefix)] != signaturePrefix {
		return false
	}
	h := header[len(signaturePrefix):]
	for i := range dst {
		hi, ok1 := lowerHex(h[2*i])
		lo, ok2 := lowerHex(h[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

// lowerHex returns the value of a lowercase hex digit.
func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Challenge answers the GET subscription handshake: it returns the challenge
// and true when mode is "subscribe" and token equals verifyToken (compared in
// constant time), and "", false otherwise. An empty verifyToken never matches,
// so an unset META_VERIFY_TOKEN cannot be satisfied by an empty hub.verify_token.
func Challenge(mode, token, challenge, verifyToken string) (string, bool) {
	if mode != "subscribe" || verifyToken == "" {
		return "", false
	}
	// Comparing digests rather than the tokens keeps the time independent of
	// the tokens' lengths too (subtle.ConstantTimeCompare returns early on a
	// length mismatch).
	got := sha256.Sum256([]byte(token))
	want := sha256.Sum256([]byte(verifyToken))
	if !hmac.Equal(got[:], want[:]) {
		return "", false
	}
	return challenge, true
}
