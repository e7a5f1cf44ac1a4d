package registry

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// KeyEnv is the setting a Keyring comes from.
const KeyEnv = "REGISTRY_KEY"

// Keyring is the set of AES-256 keys that secrets are encrypted with: the
// current key seals every new value, older keys only open values sealed
// before a rotation.
//
// REGISTRY_KEY is a comma-separated list of "id:base64" entries, the current
// key first: "k2:<base64>,k1:<base64>". Each key is 32 bytes, in standard or
// URL base64 with or without padding. A single key may be given without an
// id; its id is then "k" and the first 8 hex digits of its SHA-256, so that
// the same key always has the same id. To rotate: put the new key first,
// keep the old one after it, restart or reload, run RotateKey, then drop the
// old key.
type Keyring struct {
	current string
	keys    map[string]cipher.AEAD
	order   []string
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ParseKeyring reads REGISTRY_KEY's value. An empty value is an empty
// keyring (nil, nil): the registry then stores no secrets. Errors name the
// entry by position and id, never by value.
func ParseKeyring(v string) (*Keyring, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	kr := &Keyring{keys: map[string]cipher.AEAD{}}
	entries := strings.Split(v, ",")
	for i, e := range entries {
		e = strings.TrimSpace(e)
		id, b64, hasID := strings.Cut(e, ":")
		if !hasID {
			if len(entries) > 1 {
				return nil, fmt.Errorf("registry: %s entry %d: want id:base64 when several keys are listed", KeyEnv, i+1)
			}
			b64 = e
		}
		key, err := decodeKey(b64)
		if err != nil {
			return nil, fmt.Errorf("registry: %s entry %d: %w", KeyEnv, i+1, err)
		}
		if !hasID {
			sum := sha256.Sum256(key)
			id = "k" + hex.EncodeToString(sum[:4])
		}
		if !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("registry: %s entry %d: key id must be 1-32 letters, digits, '-' or '_'", KeyEnv, i+1)
		}
		if _, dup := kr.keys[id]; dup {
			return nil, fmt.Errorf("registry: %s: key id %s is listed twice", KeyEnv, id)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("registry: %s entry %d: %w", KeyEnv, i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("registry: %s entry %d: %w", KeyEnv, i+1, err)
		}
		kr.keys[id] = aead
		kr.order = append(kr.order, id)
	}
	kr.current = kr.order[0]
	return kr, nil
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("key is %d bytes; want 32 (base64 of 32 random bytes: openssl rand -base64 32)", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("key is not base64 (want base64 of 32 random bytes: openssl rand -base64 32)")
}

// NewKey returns a fresh REGISTRY_KEY entry "id:base64" for a development
// setup or a rotation.
func NewKey(id string) (string, error) {
	if !keyIDPattern.MatchString(id) {
		return "", fmt.Errorf("registry: key id must be 1-32 letters, digits, '-' or '_'")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return id + ":" + base64.StdEncoding.EncodeToString(b), nil
}

// CurrentID is the id of the key new values are sealed with.
func (k *Keyring) CurrentID() string {
	if k == nil {
		return ""
	}
	return k.current
}

// IDs lists the key ids, the current one first.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	return append([]string(nil), k.order...)
}

// String names the key ids only.
func (k *Keyring) String() string {
	if k == nil {
		return "keyring[]"
	}
	return "keyring[" + strings.Join(k.order, ",") + "]"
}

// GoString is String.
func (k *Keyring) GoString() string { return k.String() }

// sealedPrefix starts every sealed value: "enc1:<key id>:<base64(nonce|ciphertext)>".
const sealedPrefix = "enc1:"

// aad binds a sealed value to its business and field (GCM additional data),
// so a value copied into another record or field does not open there.
func aad(businessID, field string) []byte {
	return []byte("ctmpipe/registry/v1\x00" + businessID + "\x00" + field)
}

// seal encrypts plain for businessID's field with the current key.
func (k *Keyring) seal(businessID, field, plain string) (string, error) {
	if k == nil {
		return "", ErrNoKey
	}
	aead := k.keys[k.current]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("registry: nonce: %w", err)
	}
	ct := aead.Seal(nonce, nonce, []byte(plain), aad(businessID, field))
	return sealedPrefix + k.current + ":" + base64.RawStdEncoding.EncodeToString(ct), nil
}

// open decrypts a value seal made; it returns the key id that opened it.
func (k *Keyring) open(businessID, field, sealed string) (plain, keyID string, err error) {
	rest, ok := strings.CutPrefix(sealed, sealedPrefix)
	keyID, b64, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return "", "", fmt.Errorf("%w: business %s field %s is not a sealed value", ErrDecrypt, businessID, field)
	}
	if k == nil {
		return "", keyID, ErrNoKey
	}
	aead, known := k.keys[keyID]
	if !known {
		return "", keyID, fmt.Errorf("%w: business %s field %s is sealed with key id %s, which %s does not list (%s); add that key back as an older key",
			ErrDecrypt, businessID, field, keyID, KeyEnv, strings.Join(k.order, ","))
	}
	ct, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(ct) < aead.NonceSize() {
		return "", keyID, fmt.Errorf("%w: business %s field %s is corrupt", ErrDecrypt, businessID, field)
	}
	p, err := aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], aad(businessID, field))
	if err != nil {
		return "", keyID, fmt.Errorf("%w: business %s field %s does not open with key id %s (a different key under the same id, or a value copied from another record)",
			ErrDecrypt, businessID, field, keyID)
	}
	return string(p), keyID, nil
}
