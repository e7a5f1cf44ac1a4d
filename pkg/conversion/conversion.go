// Package conversion is the contract with order systems: the conversion
// message they publish to NATS subject conversions.<channel> (or POST to the
// intake), its fields, its limits and the rules a message must keep to be
// reported to Meta. docs/contract.md describes the same contract in prose.
//
// Sources (Meta for Developers):
//   - "Conversions API for Business Messaging: Onboarding Guide",
//     https://developers.facebook.com/documentation/ads-commerce/conversions-api/business-messaging
//     (the event names of the FAQ "What type of messaging events does the
//     Conversions API for Business Messaging support?", the three channels).
//   - "Data Processing Options for US Users",
//     https://developers.facebook.com/docs/marketing-apis/data-processing-options
//     (Limited Data Use: ["LDU"] or [], country 1 = US, state 1000 =
//     California, 0 and 0 = "Meta determines the location").
//   - WhatsApp "Business-scoped user IDs" (a BSUID is "two-letter country
//     code, a period, up to 128 alphanumeric characters").
package conversion

import (
	"encoding/json"
	"strings"
)

// The channels, as in subject conversions.<channel> and Meta's
// messaging_channel.
const (
	WhatsApp  = "whatsapp"
	Messenger = "messenger"
	Instagram = "instagram"
)

// The event names Meta accepts with action_source business_messaging (the
// onboarding guide's FAQ lists these fourteen).
const (
	Purchase         = "Purchase"
	LeadSubmitted    = "LeadSubmitted"
	InitiateCheckout = "InitiateCheckout"
	AddToCart        = "AddToCart"
	ViewContent      = "ViewContent"
	OrderCreated     = "OrderCreated"
	OrderShipped     = "OrderShipped"
	OrderDelivered   = "OrderDelivered"
	OrderCanceled    = "OrderCanceled"
	OrderReturned    = "OrderReturned"
	CartAbandoned    = "CartAbandoned"
	QualifiedLead    = "QualifiedLead"
	RatingProvided   = "RatingProvided"
	ReviewProvided   = "ReviewProvided"
)

// Limits of the message's fields, in bytes.
const (
	// MaxEventIDLen bounds event_id, which is also the ledger's key.
	MaxEventIDLen = 256
	// MaxBusinessIDLen bounds business_id (WABA, phone_number_id, page or
	// Instagram account id: numbers of 15 to 17 digits today).
	MaxBusinessIDLen = 64
	// MaxUserIDLen bounds user_id: a WhatsApp BSUID is two letters, a period
	// and up to 128 alphanumerics (131); phones, PSIDs and IGSIDs are shorter.
	MaxUserIDLen = 131
	// MaxClickIDLen bounds ctwa_clid (Meta's examples are 100 to 130
	// characters; it documents no limit).
	MaxClickIDLen = 512
	// MaxDatasetIDLen bounds dataset_id.
	MaxDatasetIDLen = 64
	// MaxEventTime is the largest event_time taken as Unix seconds (the
	// year 5138); a larger one is almost surely milliseconds.
	MaxEventTime = 100_000_000_000
)

// Limited Data Use values ("Data Processing Options for US Users").
const (
	// LDU is the one value data_processing_options may hold.
	LDU = "LDU"
	// CountryGeolocate and StateGeolocate ask Meta to determine the location.
	CountryGeolocate = 0
	StateGeolocate   = 0
	// CountryUS is the country code of the United States.
	CountryUS = 1
	// StateCalifornia is the one state code Meta documents; other states
	// where LDU applies are found by Meta's geolocation (0, 0).
	StateCalifornia = 1000
)

var eventNames = [...]string{
	Purchase, LeadSubmitted, InitiateCheckout, AddToCart, ViewContent,
	OrderCreated, OrderShipped, OrderDelivered, OrderCanceled, OrderReturned,
	CartAbandoned, QualifiedLead, RatingProvided, ReviewProvided,
}

// EventNames returns the fourteen event names a conversion may carry, in
// the order of Meta's list.
func EventNames() []string { return append([]string(nil), eventNames[:]...) }

// IsEventName reports whether name is one of EventNames.
func IsEventName(name string) bool {
	for _, n := range eventNames {
		if n == name {
			return true
		}
	}
	return false
}

// Channels returns the channel names.
func Channels() []string { return []string{WhatsApp, Messenger, Instagram} }

// IsChannel reports whether name is one of Channels.
func IsChannel(name string) bool {
	return name == WhatsApp || name == Messenger || name == Instagram
}

// Conversion is one conversion message. Its JSON form is the message.
type Conversion struct {
	EventID   string `json:"event_id"`
	EventName string `json:"event_name"`
	// EventTime is Unix seconds; 0 when the message has none (the sender
	// then uses the time it was first published).
	EventTime  int64  `json:"event_time,omitempty"`
	Channel    string `json:"channel"`
	BusinessID string `json:"business_id"` // WABA id or phone_number_id, page id, IG account id
	// UserID is personal data: the WhatsApp phone (wa_id) or BSUID, the
	// PSID or the IGSID. Never log it. Required, except on a WhatsApp
	// conversion that carries its CtwaClid.
	UserID string `json:"user_id"`
	// CtwaClid is the WhatsApp click id (ctwa_clid), for a publisher that
	// has it already: Meta's automatic events carry it and no customer id.
	// WhatsApp only; when set the sender reports it instead of looking up
	// the conversation's context, and user_id may be empty. Personal data.
	CtwaClid  string `json:"ctwa_clid,omitempty"`
	DatasetID string `json:"dataset_id,omitempty"` // overrides the business's dataset
	// CustomData is a JSON object passed to Meta as custom_data; nil when
	// absent. Purchase needs currency and value.
	CustomData json.RawMessage `json:"custom_data,omitempty"`
	// DataProcessingOptions is [] or ["LDU"] (Limited Data Use); nil and []
	// mean the same to Meta.
	DataProcessingOptions []string `json:"data_processing_options,omitempty"`
	// DataProcessingOptionsCountry and DataProcessingOptionsState go with
	// ["LDU"]: 1 and 1000 (US, California) or 0 and 0 (Meta geolocates).
	DataProcessingOptionsCountry *int `json:"data_processing_options_country,omitempty"`
	DataProcessingOptionsState   *int `json:"data_processing_options_state,omitempty"`
}

// Error says which rule a message breaks: a field (a JSON path; empty for
// the message as a whole) and a reason. It names fields and rules, never
// values, so it is safe to log and to put in a dead letter's header.
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

func invalid(field, reason string) *Error { return &Error{Field: field, Reason: reason} }

var (
	errEventName = invalid("event_name", "not one of "+strings.Join(eventNames[:], ", "))
	errChannel   = invalid("channel", "must be whatsapp, messenger or instagram")
)

// Validate checks c against the contract: the required fields, their
// limits and characters, one of the fourteen event names, a known channel,
// event_time as Unix seconds, custom_data a JSON object (for Purchase with a
// three-letter currency and a numeric value) and the Limited Data Use
// fields. Whether event_time is recent enough for Meta is the sender's
// decision (dead letter expired), not the contract's.
func (c *Conversion) Validate() error {
	if err := c.checkLengths(); err != nil {
		return err
	}
	if len(c.CustomData) == 0 {
		return c.check(nil)
	}
	if err := checkJSON("custom_data", c.CustomData); err != nil {
		return err
	}
	p := parsers.Get()
	defer parsers.Put(p)
	cd, err := p.ParseBytes(c.CustomData)
	if err != nil {
		return invalid("custom_data", "not JSON: nested too deeply")
	}
	if path, bad := overflow(cd); bad {
		return errOverflow("custom_data." + path)
	}
	return c.check(cd)
}
