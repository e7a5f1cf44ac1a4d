// Package autoevents turns the events Meta detects in click-to-WhatsApp
// threads (webhook field automatic_events, for businesses that opted in to
// Automatic Events reporting) into conversions, and publishes them to the
// CONVERSIONS stream for the sender to report like any other.
//
// Meta, "automatic_events webhook reference":
// https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/automatic_events
// ("you can then report the event for the customer using the Conversions
// API"). docs/automatic-events.md describes the feature for operators.
package autoevents

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"

	"github.com/ctmpipe/ctmpipe/pkg/conversion"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// EventIDPrefix starts the event_id of every automatic event, so that an
// operator tells them from an order system's at a glance.
const EventIDPrefix = "meta-auto:"

// EventID is the deterministic event_id of an automatic event: the prefix
// and the first 32 hex digits of SHA-256(messageID "|" eventName). A
// redelivered webhook yields the same id, so JetStream (within its
// duplicate window) and the sender's ledger (for SENT_TTL) drop it; a
// purchase and a lead detected in the same message stay two events.
func EventID(messageID, eventName string) string {
	sum := sha256.Sum256([]byte(messageID + "|" + eventName))
	return EventIDPrefix + hex.EncodeToString(sum[:16])
}

// ErrNoClick is the reason an event without ctwa_clid cannot be reported:
// Meta omits the click id for ads in WhatsApp Status, and takes no WhatsApp
// event without it.
var ErrNoClick = errors.New("ctwa_clid: absent (an ad in WhatsApp Status?): Meta takes no WhatsApp event without it")

// Convert turns one automatic event into a conversion for channel whatsapp
// and validates it against the contract. The conversion's business_id is the
// WABA id; it carries Meta's ctwa_clid, which the sender reports instead of
// looking up a stored click (the webhook names no customer to look up by);
// user_id is the customer's id only if Meta ever sends one. custom_data
// passes through with its value divided by 1000: Meta sends "product price
// multiplied by 1000", and CAPI takes the price. An unknown event_name is the
// contract's to refuse. The error is ErrNoClick or a *conversion.Error; both
// name fields, never values.
func Convert(ev webhook.AutomaticEvent) (conversion.Conversion, error) {
	c := conversion.Conversion{
		EventID:    EventID(ev.MessageID, ev.EventName),
		EventName:  ev.EventName,
		EventTime:  ev.Time,
		Channel:    conversion.WhatsApp,
		BusinessID: ev.BusinessID,
		UserID:     ev.UserID,
		CtwaClid:   ev.ClickID,
	}
	if c.UserID == "" {
		c.UserID = ev.BSUID
	}
	if c.CtwaClid == "" {
		return c, ErrNoClick
	}
	if len(ev.CustomData) > 0 {
		cd, err := scaleValue(ev.CustomData)
		if err != nil {
			return c, err
		}
		c.CustomData = cd
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// scaleValue returns custom_data with its value (a JSON number, or a string
// of one: Meta's table types it String, its example writes a number) divided
// by 1000, exactly, in decimal. Other fields pass through.
func scaleValue(raw json.RawMessage) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, &conversion.Error{Field: "custom_data", Reason: "must be a JSON object"}
	}
	v, ok := fields["value"]
	if !ok {
		return raw, nil
	}
	lit := bytes.TrimSpace(v)
	if len(lit) > 0 && lit[0] == '"' {
		var s string
		if json.Unmarshal(lit, &s) != nil {
			return nil, &conversion.Error{Field: "custom_data.value", Reason: "not a number"}
		}
		lit = []byte(s)
	}
	r, ok := new(big.Rat).SetString(string(lit))
	// big.Rat also reads fractions (1/3) and hex; JSON numbers only.
	if !ok || !json.Valid(lit) || lit[0] == '"' {
		return nil, &conversion.Error{Field: "custom_data.value", Reason: "not a number"}
	}
	r.Quo(r, big.NewRat(1000, 1))
	digits, _ := r.FloatPrec() // exact: a decimal ÷ 1000 is a decimal
	fields["value"] = json.RawMessage(r.FloatString(min(digits, 30)))
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, &conversion.Error{Field: "custom_data", Reason: "not JSON"}
	}
	return out, nil
}
