// Package webhook verifies and parses the webhooks Meta sends for Messenger,
// Instagram Direct and WhatsApp (Cloud API and On-Premises), and turns the ad
// clicks they carry into channel-neutral Touches.
//
// It does not log and does not store: callers decide what to do with a Payload.
package webhook

import "errors"

// Channel names a messaging channel as the Conversions API spells it in
// messaging_channel.
type Channel string

// The channels a click-to-message ad can open.
const (
	WhatsApp  Channel = "whatsapp"
	Messenger Channel = "messenger"
	Instagram Channel = "instagram"
)

// Touch is one ad click seen in a webhook: who clicked (UserID) which ad
// (AdID, ClickID) to reach which business (BusinessID), and when.
type Touch struct {
	Channel Channel `json:"channel"`
	// BusinessID is the WABA id (WhatsApp), page id (Messenger) or Instagram
	// professional account id. Empty for On-Premises WhatsApp until the caller
	// fills in the configured WABA id.
	BusinessID string `json:"business_id"`
	// PhoneNumberID is the WhatsApp business phone number id (Cloud API only).
	PhoneNumberID string `json:"phone_number_id,omitempty"`
	// UserID is the id the conversation is keyed by first: the PSID or
	// IGSID; for WhatsApp the phone (contacts[].wa_id, else messages[].from),
	// or the BSUID when the customer shows no phone. Personal data: never
	// log it.
	UserID string `json:"user_id"`
	// BSUID is WhatsApp's business-scoped user id (messages[].from_user_id,
	// else the sender's contacts[].user_id), when the delivery carries one;
	// it equals UserID when the customer shows no phone. Personal data.
	BSUID string `json:"bsuid,omitempty"`
	// ParentBSUID is the sender's parent BSUID (from_parent_user_id or
	// contacts[].parent_user_id), sent for linked business portfolios.
	// Personal data.
	ParentBSUID string `json:"parent_bsuid,omitempty"`
	// From is messages[].from when it differs from the contact's wa_id
	// (UserID), which Meta warns may happen; empty otherwise. Personal data.
	From string `json:"from,omitempty"`
	// ClickID is WhatsApp's ctwa_clid. Personal data: never log it.
	ClickID string `json:"ctwa_clid,omitempty"`
	// AdID is WhatsApp's referral.source_id or Messenger/Instagram referral.ad_id.
	AdID string `json:"ad_id,omitempty"`
	// SourceType is WhatsApp's referral.source_type ("ad", "post") or the
	// Messenger/Instagram referral.source ("ADS").
	SourceType string `json:"source_type,omitempty"`
	// SourceURL is WhatsApp's referral.source_url.
	SourceURL string `json:"source_url,omitempty"`
	// Ref is the Messenger/Instagram referral.ref parameter.
	Ref string `json:"ref,omitempty"`
	// Time is when the click reached the business, in Unix seconds
	// (Messenger and Instagram send milliseconds; they are converted). Zero
	// when the delivery carries no usable time: callers then use the time
	// they received it.
	Time int64 `json:"time"`
}

// Payload is what one webhook delivery yields.
type Payload struct {
	// Object is the payload's top-level "object" ("page", "instagram",
	// "whatsapp_business_account"), or "onprem" for On-Premises deliveries.
	// For objects this package does not use it is whatever the sender wrote
	// ("" when missing or not a string): do not use it as a metric label as is.
	Object string `json:"object"`
	// Channel is empty when Object is one this package does not use.
	Channel Channel `json:"channel,omitempty"`
	// Touches are the ad clicks to store, in delivery order.
	Touches []Touch `json:"touches"`
	// AutomaticEvents are the purchases and leads Meta detected in
	// click-to-WhatsApp threads (Cloud API field "automatic_events"), in
	// delivery order; nil when there are none.
	AutomaticEvents []AutomaticEvent `json:"automatic_events,omitempty"`
	// IDChanges are WhatsApp system messages saying a customer's phone or
	// BSUID changed (system.go), in delivery order; nil when there are none.
	IDChanges []IDChange `json:"id_changes,omitempty"`
	// Ignored counts events that were understood and carry nothing to store
	// (statuses, errors, echoes, reads, messages without an ad referral,
	// non-ad referrals, Instagram comment changes, template updates).
	Ignored int `json:"ignored"`
	// Malformed counts events that looked like ad clicks but could not be
	// keyed (missing ids, wrong JSON types), and elements not shaped like
	// events at all (an entry that is not an object, say).
	Malformed int `json:"malformed"`
}

// Errors callers branch on.
var (
	// ErrSignature means the X-Hub-Signature-256 header is missing, malformed
	// or matches none of the app secrets.
	ErrSignature = errors.New("webhook: signature does not match")
	// ErrNotJSON means the body is not a JSON object.
	ErrNotJSON = errors.New("webhook: body is not a JSON object")
)
