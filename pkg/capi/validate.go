package capi

import (
	"bytes"
	"encoding/json"
	"math"
	"time"
)

// MaxEventAge is the oldest event_time Meta accepts: "The event_time can be up
// to 7 days before you send an event to Meta. If any event_time in data is
// greater than 7 days in the past, we return an error for the entire request
// and process no events." (Using the API).
const MaxEventAge = 7 * 24 * time.Hour

// MaxFutureSkew is how far in the future an event_time may lie. Meta's pages
// say event_time is when the event "actually occurred" and give no future
// allowance, so Validate allows only clock skew. It matches the fake Graph API
// (internal/fakegraph), so an event that passes here is not rejected there.
const MaxFutureSkew = time.Minute

// messagingEventNames is the FAQ list "What type of messaging events does the
// Conversions API for Business Messaging support?" (onboarding guide). Other
// standard events (Lead, Contact, ...) and custom names are refused with
// business_messaging; integrators report subcode 2804066 for them.
var messagingEventNames = map[string]bool{
	"Purchase": true, "LeadSubmitted": true, "InitiateCheckout": true,
	"AddToCart": true, "ViewContent": true, "OrderCreated": true,
	"OrderShipped": true, "OrderDelivered": true, "OrderCanceled": true,
	"OrderReturned": true, "CartAbandoned": true, "QualifiedLead": true,
	"RatingProvided": true, "ReviewProvided": true,
}

// IsMessagingEventName reports whether Meta accepts name as the event_name of
// a business_messaging event. The contract with order systems
// (pkg/conversion) allows the same fourteen.
func IsMessagingEventName(name string) bool { return messagingEventNames[name] }

// ValidationError names the rule an event breaks. It carries field names
// only, never values, so it is safe to log.
type ValidationError struct {
	Field  string // JSON path, e.g. "user_data.ctwa_clid"
	Reason string
}

func (e *ValidationError) Error() string {
	return "capi: invalid event: " + e.Field + ": " + e.Reason
}

// Validate checks e the way Meta checks it, against the current time.
func (e Event) Validate() error { return e.ValidateAt(time.Now()) }

// ValidateAt checks e the way Meta checks it at time now: a supported event
// name, an event_time within [now-MaxEventAge, now+MaxFutureSkew], action_source
// business_messaging, a known messaging_channel with that channel's two
// user_data ids (onboarding guide samples), custom_data an object, and for
// Purchase a three-letter currency and a numeric value.
func (e Event) ValidateAt(now time.Time) error {
	if !IsMessagingEventName(e.EventName) {
		return &ValidationError{"event_name", "not a business messaging event name"}
	}
	t := time.Unix(e.EventTime, 0)
	switch {
	case e.EventTime <= 0:
		return &ValidationError{"event_time", "missing"}
	case now.Sub(t) > MaxEventAge:
		return &ValidationError{"event_time", "older than 7 days"}
	case t.Sub(now) > MaxFutureSkew:
		return &ValidationError{"event_time", "in the future"}
	}
	if e.ActionSource != ActionSource {
		return &ValidationError{"action_source", "must be " + ActionSource}
	}
	if err := e.UserData.validate(e.MessagingChannel); err != nil {
		return err
	}
	if err := e.validateDataProcessing(); err != nil {
		return err
	}
	return validateCustomData(e.EventName, e.CustomData)
}

// validateDataProcessing checks Limited Data Use as "Data Processing Options
// for US Users" gives it: options [] or ["LDU"], country 0 (Meta
// geolocates) or 1 (US), state 0 or 1000 (California).
func (e Event) validateDataProcessing() error {
	if o := e.DataProcessingOptions; len(o) > 1 || (len(o) == 1 && o[0] != "LDU") {
		return &ValidationError{"data_processing_options", `must be [] or ["LDU"]`}
	}
	if c := e.DataProcessingOptionsCountry; c != nil && *c != 0 && *c != 1 {
		return &ValidationError{"data_processing_options_country", "must be 0 or 1"}
	}
	if s := e.DataProcessingOptionsState; s != nil && *s != 0 && *s != 1000 {
		return &ValidationError{"data_processing_options_state", "must be 0 or 1000"}
	}
	return nil
}

func (u UserData) validate(channel string) error {
	var need [2][2]string // {field, value}
	switch channel {
	case ChannelWhatsApp:
		need = [2][2]string{{"whatsapp_business_account_id", u.WhatsAppBusinessAccountID}, {"ctwa_clid", u.CtwaClid}}
	case ChannelMessenger:
		need = [2][2]string{{"page_id", u.PageID}, {"page_scoped_user_id", u.PageScopedUserID}}
	case ChannelInstagram:
		need = [2][2]string{{"instagram_business_account_id", u.InstagramBusinessAccountID}, {"ig_sid", u.IGSID}}
	default:
		return &ValidationError{"messaging_channel", "must be whatsapp, messenger or instagram"}
	}
	for _, f := range need {
		if f[1] == "" {
			return &ValidationError{"user_data." + f[0], "required for " + channel}
		}
	}
	return nil
}

func validateCustomData(eventName string, raw json.RawMessage) error {
	var cd map[string]json.RawMessage
	if len(bytes.TrimSpace(raw)) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if err := json.Unmarshal(raw, &cd); err != nil {
			return &ValidationError{"custom_data", "must be a JSON object"}
		}
	}
	if eventName != "Purchase" {
		return nil
	}
	var currency string
	if err := json.Unmarshal(cd["currency"], &currency); err != nil || !isCurrencyCode(currency) {
		return &ValidationError{"custom_data.currency", "Purchase needs a three-letter ISO 4217 code"}
	}
	var value float64
	if err := json.Unmarshal(cd["value"], &value); err != nil || math.IsInf(value, 0) || math.IsNaN(value) {
		return &ValidationError{"custom_data.value", "Purchase needs a numeric value"}
	}
	return nil
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}
