package registry

import (
	"encoding/json"
	"fmt"
)

// Secret holds an access token or app secret. Every way of printing it —
// String, GoString, any fmt verb, JSON — shows at most whether it is set and
// its last four characters, so a Secret logged or marshalled by mistake does
// not leak. Reveal is the one way to the value.
type Secret struct{ v string }

// NewSecret wraps s; "" is an unset secret.
func NewSecret(s string) Secret { return Secret{s} }

// Reveal returns the secret itself, for the request that needs it.
func (s Secret) Reveal() string { return s.v }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s.v != "" }

// minLast4Len is the shortest secret whose last four characters are shown:
// four of a short value would give away too much of it.
const minLast4Len = 16

// Last4 returns the secret's last four characters, so that an operator can
// tell which token is stored, or "" when it is unset or too short to show.
func (s Secret) Last4() string {
	if len(s.v) < minLast4Len {
		return ""
	}
	return s.v[len(s.v)-4:]
}

// String is "[unset]", "[set]" or "[set …abcd]".
func (s Secret) String() string {
	switch {
	case s.v == "":
		return "[unset]"
	case s.Last4() == "":
		return "[set]"
	}
	return "[set …" + s.Last4() + "]"
}

// GoString is String, so that %#v does not print the value.
func (s Secret) GoString() string { return s.String() }

// Format prints String for every verb (%d or %x of a struct would print its
// fields otherwise).
func (s Secret) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// MarshalJSON writes String, never the value.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }
