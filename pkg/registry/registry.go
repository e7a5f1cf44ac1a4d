// Package registry is the business registry: one record per business id (a
// WhatsApp Business Account id, a Facebook page id or an Instagram account
// id) saying where that business's conversions go and with which
// credentials. Records live in Redis (Store), secrets encrypted at rest with
// AES-256-GCM (Keyring), and every sender reads them through a Cache that
// sees a change within about a second without a restart.
//
// The package does not log; errors never contain a secret.
package registry

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Channel is the messaging channel of a business.
type Channel string

// The channels a business can be on.
const (
	WhatsApp  Channel = "whatsapp"
	Messenger Channel = "messenger"
	Instagram Channel = "instagram"
)

// Attribution is a business's attribution policy: which of a
// conversation's ad clicks its conversions are reported with.
type Attribution string

// The attribution policies. "" means LastTouch.
const (
	// LastTouch reports the latest click of the conversation (the default).
	LastTouch Attribution = "last_touch"
	// FirstTouch reports the first click of the conversation within
	// CONTEXT_TTL and ignores later ones.
	FirstTouch Attribution = "first_touch"
)

// Valid reports whether a is a policy ("" counts as LastTouch).
func (a Attribution) Valid() bool { return a == "" || a == LastTouch || a == FirstTouch }

// Or returns a, or LastTouch when a is "".
func (a Attribution) Or() Attribution {
	if a == "" {
		return LastTouch
	}
	return a
}

// Valid reports whether c is one of the three channels.
func (c Channel) Valid() bool { return c == WhatsApp || c == Messenger || c == Instagram }

// Limits of a record, checked by Validate. Meta's ids are decimal numbers
// (WABA, page, Instagram account, phone number and dataset ids alike);
// MaxIDLen leaves room for their growth. The length limits are our own
// bounds, to keep records small and catch a pasted file; they are well above
// any real token, app secret (32 hex digits), test event code or partner
// agent.
const (
	MaxIDLen            = 32
	MaxPhoneNumberIDs   = 100
	MaxTokenLen         = 4096
	MaxAppSecretLen     = 256
	MaxTestEventCodeLen = 64
	MaxPartnerAgentLen  = 64
)

// Business is one registry record.
type Business struct {
	ID        string  // business id: WABA id, page id or Instagram account id
	Channel   Channel // whatsapp, messenger or instagram
	DatasetID string  // where conversions go; "" = resolve with the Dataset API
	// AccessToken posts this business's events; unset = CAPI_ACCESS_TOKEN.
	AccessToken Secret
	// AppSecret makes appsecret_proof for AccessToken ("Securing Graph API
	// Requests": HMAC-SHA256 of the token keyed with the app secret); unset =
	// CAPI_APP_SECRET.
	AppSecret      Secret
	TestEventCode  string   // "" = CAPI_TEST_EVENT_CODE
	PhoneNumberIDs []string // WhatsApp phone_number_ids of the WABA
	// RequireReferral overrides the sender's REQUIRE_REFERRAL for this
	// business; nil = the channel's default there.
	RequireReferral *bool
	// AutomaticEvents turns WhatsApp automatic_events (a lead or purchase
	// Meta detected) into conversions for this business even when
	// AUTOMATIC_EVENTS is off.
	AutomaticEvents bool
	// Attribution is which click of a conversation is reported: LastTouch
	// (also "") or FirstTouch. Ingest applies it when it stores a click.
	Attribution  Attribution
	Enabled      bool   // false: the business's conversions are not sent
	PartnerAgent string // "" = CAPI_PARTNER_AGENT
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Errors callers branch on with errors.Is.
var (
	ErrNotFound = errors.New("registry: business not found")
	ErrExists   = errors.New("registry: business already exists")
	// ErrNoKey: a secret was to be stored or read without REGISTRY_KEY.
	ErrNoKey = errors.New("registry: REGISTRY_KEY is not set: it is required to store or read an access_token or app_secret (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)")
	// ErrDecrypt: a secret does not open with the key its key id names.
	ErrDecrypt = errors.New("registry: secret does not decrypt")
)

// ValidationError says which field of a record is wrong and how. Its text
// never quotes a secret.
type ValidationError struct {
	Field string // the JSON name of the field: "channel", "phone_number_ids"
	Msg   string
}

func (e *ValidationError) Error() string { return "registry: " + e.Field + ": " + e.Msg }

// PhoneTakenError: a phone_number_id already belongs to another business.
type PhoneTakenError struct {
	PhoneNumberID, Owner string
}

func (e *PhoneTakenError) Error() string {
	return fmt.Sprintf("registry: phone_number_id %s already belongs to business %s; remove it there first", e.PhoneNumberID, e.Owner)
}

var (
	numericID = regexp.MustCompile(`^[0-9]+$`)
	// printable ASCII without spaces: test event codes, partner agents and
	// secrets never contain anything else.
	token = regexp.MustCompile(`^[!-~]+$`)
)

// ValidID checks a business, dataset or phone number id.
func ValidID(field, id string) error {
	switch {
	case id == "":
		return &ValidationError{field, "required"}
	case len(id) > MaxIDLen:
		return &ValidationError{field, fmt.Sprintf("longer than %d digits", MaxIDLen)}
	case !numericID.MatchString(id):
		return &ValidationError{field, "must be a Meta id (digits only)"}
	}
	return nil
}

// Validate checks b against the limits above.
func (b *Business) Validate() error {
	if err := ValidID("business_id", b.ID); err != nil {
		return err
	}
	if !b.Channel.Valid() {
		return &ValidationError{"channel", "must be whatsapp, messenger or instagram"}
	}
	if b.DatasetID != "" {
		if err := ValidID("dataset_id", b.DatasetID); err != nil {
			return err
		}
	}
	if err := checkText("access_token", b.AccessToken.v, MaxTokenLen); err != nil {
		return err
	}
	if err := checkText("app_secret", b.AppSecret.v, MaxAppSecretLen); err != nil {
		return err
	}
	if err := checkText("test_event_code", b.TestEventCode, MaxTestEventCodeLen); err != nil {
		return err
	}
	if err := checkText("partner_agent", b.PartnerAgent, MaxPartnerAgentLen); err != nil {
		return err
	}
	if !b.Attribution.Valid() {
		return &ValidationError{"attribution", "must be last_touch or first_touch"}
	}
	if len(b.PhoneNumberIDs) > 0 && b.Channel != WhatsApp {
		return &ValidationError{"phone_number_ids", "only WhatsApp businesses have phone_number_ids"}
	}
	if len(b.PhoneNumberIDs) > MaxPhoneNumberIDs {
		return &ValidationError{"phone_number_ids", fmt.Sprintf("more than %d", MaxPhoneNumberIDs)}
	}
	seen := make(map[string]bool, len(b.PhoneNumberIDs))
	for _, p := range b.PhoneNumberIDs {
		if err := ValidID("phone_number_ids", p); err != nil {
			return err
		}
		if seen[p] {
			return &ValidationError{"phone_number_ids", "lists " + p + " twice"}
		}
		seen[p] = true
	}
	return nil
}

// checkText checks an optional value; the message never quotes it, as it
// may be a secret.
func checkText(field, v string, max int) error {
	switch {
	case v == "":
		return nil
	case len(v) > max:
		return &ValidationError{field, fmt.Sprintf("longer than %d characters", max)}
	case !token.MatchString(v):
		return &ValidationError{field, "must be printable ASCII without spaces (check for a stray newline or quote)"}
	case field == "access_token" && strings.HasPrefix(strings.ToLower(v), "bearer"):
		return &ValidationError{field, `give the token itself, without "Bearer"`}
	}
	return nil
}
