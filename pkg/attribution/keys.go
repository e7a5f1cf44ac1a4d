package attribution

import (
	"fmt"
	"slices"
	"time"
)

// MaxIDLen bounds business, user and phone number ids. Page, account and
// phone ids are at most 20 digits; a WhatsApp BSUID is "a two-letter country
// code, a period, and up to 128 alphanumeric characters" (Meta,
// "Business-scoped user IDs"), so 131.
const MaxIDLen = 131

// maxUserAliases bounds a touch's Aliases: the BSUID, the parent BSUID and
// messages[].from are the most WhatsApp gives.
const maxUserAliases = 3

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
	if id == "" || len(id) > MaxIDLen {
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

// Validate reports why t cannot be stored, or nil when Record would take it.
// It is pure (no I/O), so callers can drop bad touches before they share a
// write with good ones: Record stores nothing of a call that holds one. The
// error wraps ErrInvalidTouch and carries no personal data.
func (t *Touch) Validate() error {
	if reason := t.invalid(); reason != "" {
		return fmt.Errorf("%w: %s", ErrInvalidTouch, reason)
	}
	return nil
}

// invalid returns why t cannot be stored, or "".
func (t *Touch) invalid() string {
	if _, ok := channelCode(t.Channel); !ok {
		return "unknown channel"
	}
	switch {
	case !validID(t.BusinessID):
		return "bad business id"
	case !validID(t.UserID):
		return "bad user id"
	case t.PhoneNumberID != "" && (t.Channel != WhatsApp || !validID(t.PhoneNumberID)):
		return "bad phone number id"
	case t.Time.IsZero() || t.Time.UnixMilli() < 0 || t.Time.UnixMilli() > maxMillis:
		return "time out of range"
	case len(t.Aliases) > maxUserAliases:
		return "too many user id aliases"
	}
	for _, a := range t.Aliases {
		if !validID(a) {
			return "bad user id alias"
		}
	}
	for _, f := range []string{t.ClickID, t.AdID, t.SourceType, t.SourceURL, t.Ref} {
		if len(f) > maxField {
			return fmt.Sprintf("click field over %d bytes", maxField)
		}
	}
	return ""
}

// checkTouch is Validate with the touch's index in a Record call.
func checkTouch(i int, t *Touch) error {
	if reason := t.invalid(); reason != "" {
		return fmt.Errorf("%w: touch %d: %s", ErrInvalidTouch, i, reason)
	}
	return nil
}

// userIDs returns the distinct user ids t's context is stored under:
// Key.UserID first, then its aliases.
func (t *Touch) userIDs() []string {
	if len(t.Aliases) == 0 {
		return []string{t.UserID}
	}
	ids := make([]string, 1, 1+len(t.Aliases))
	ids[0] = t.UserID
	for _, a := range t.Aliases {
		if !slices.Contains(ids, a) {
			ids = append(ids, a)
		}
	}
	return ids
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
		NoClickID: t.Channel == WhatsApp && t.ClickID == "", FirstTouch: t.FirstTouch,
	}
}
