package attribution

import (
	"fmt"
	"time"
)

// maxID bounds business, user and phone number ids; Meta's are ≤ 20 digits.
const maxID = 64

// channelCode is the one-letter channel prefix inside a context key.
func channelCode(ch string) (byte, bool) {
	switch ch {
	case WhatsApp:
		return 'w', true
	case Messenger:
		return 'm', true
	case Instagram:
		return 'i', true
	}
	return 0, false
}

// validID rejects ids that would make keys ambiguous (':'), break the hash
// tag ('{', '}') or are not plain printable ASCII.
func validID(id string) bool {
	if id == "" || len(id) > maxID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == ':' || c == '{' || c == '}' {
			return false
		}
	}
	return true
}

// contextKey returns the Redis key of k's context, or false when k cannot
// have one.
func contextKey(k Key) (string, bool) {
	code, ok := channelCode(k.Channel)
	if !ok || !validID(k.BusinessID) || !validID(k.UserID) {
		return "", false
	}
	return "c:{" + string(code) + ":" + k.BusinessID + ":" + k.UserID + "}", true
}

// aliasKey returns the key mapping a WhatsApp phone_number_id to its WABA id.
// It is not personal data: it names a business phone, not a customer.
func aliasKey(phoneNumberID string) string {
	return "p:{" + phoneNumberID + "}"
}

// checkTouch reports why t cannot be stored, without personal data.
func checkTouch(i int, t *Touch) error {
	if _, ok := channelCode(t.Channel); !ok {
		return fmt.Errorf("%w: touch %d: unknown channel", ErrInvalidTouch, i)
	}
	switch {
	case !validID(t.BusinessID):
		return fmt.Errorf("%w: touch %d: bad business id", ErrInvalidTouch, i)
	case !validID(t.UserID):
		return fmt.Errorf("%w: touch %d: bad user id", ErrInvalidTouch, i)
	case t.PhoneNumberID != "" && (t.Channel != WhatsApp || !validID(t.PhoneNumberID)):
		return fmt.Errorf("%w: touch %d: bad phone number id", ErrInvalidTouch, i)
	case t.Time.IsZero() || t.Time.UnixMilli() < 0 || t.Time.UnixMilli() > maxMillis:
		return fmt.Errorf("%w: touch %d: time out of range", ErrInvalidTouch, i)
	}
	for _, f := range []string{t.ClickID, t.AdID, t.SourceType, t.SourceURL, t.Ref} {
		if len(f) > maxField {
			return fmt.Errorf("%w: touch %d: click field over %d bytes", ErrInvalidTouch, i, maxField)
		}
	}
	return nil
}

func millisTime(ms uint64) time.Time {
	return time.UnixMilli(int64(ms)).UTC()
}

// touchContext is the context a single touch would store on its own.
func touchContext(t *Touch) Context {
	tm := millisTime(uint64(t.Time.UnixMilli()))
	return Context{
		Key: t.Key, ClickID: t.ClickID, AdID: t.AdID, SourceType: t.SourceType,
		SourceURL: t.SourceURL, Ref: t.Ref, FirstSeen: tm, LastSeen: tm,
	}
}
