// Package capi speaks Meta's Conversions API for Business Messaging: the wire
// types of an event, a client that posts batches to /{dataset_id}/events, the
// Dataset API, and a typed Graph API error with its classification.
//
// Sources (Meta for Developers; read through stored copies, see the report):
//   - "Conversions API for Business Messaging: Onboarding Guide",
//     https://developers.facebook.com/documentation/ads-commerce/conversions-api/business-messaging
//     (per-channel user_data, messaging_channel, the Dataset API, the event
//     names of the FAQ, "Meta does not assist with deduplicating events").
//   - "Using the API", https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api
//     (access_token query parameter, event_time up to 7 days old, up to 1,000
//     events in data, "If any event you send in a batch is invalid, we reject
//     the entire batch", test_event_code).
//   - "Handling Errors", https://developers.facebook.com/docs/graph-api/guides/error-handling
//   - "Rate Limits", https://developers.facebook.com/docs/graph-api/overview/rate-limiting
//   - "Securing Graph API Requests", https://developers.facebook.com/docs/graph-api/securing-requests
//     (appsecret_proof).
package capi

import "encoding/json"

// ActionSource is the action_source of every business-messaging event.
const ActionSource = "business_messaging"

// MaxBatch is the most events one /events request may carry ("You can send
// up to 1,000 events in data", Using the API).
const MaxBatch = 1000

// The messaging_channel values of the onboarding guide's three sample calls.
const (
	ChannelWhatsApp  = "whatsapp"
	ChannelMessenger = "messenger"
	ChannelInstagram = "instagram"
)

// Event is one server event as the Conversions API for Business Messaging
// takes it.
type Event struct {
	EventName        string          `json:"event_name"`
	EventTime        int64           `json:"event_time"` // Unix seconds
	EventID          string          `json:"event_id,omitempty"`
	ActionSource     string          `json:"action_source"`
	MessagingChannel string          `json:"messaging_channel"`
	UserData         UserData        `json:"user_data"`
	CustomData       json.RawMessage `json:"custom_data,omitempty"`
	// DataProcessingOptions, with its country and state, asks Meta for
	// Limited Data Use of this event ("Data Processing Options for US
	// Users", https://developers.facebook.com/docs/marketing-apis/data-processing-options):
	// ["LDU"] with 1 and 1000 (US, California) or 0 and 0 (Meta geolocates).
	// Empty and nil both mean no LDU, as Meta reads an absent field.
	DataProcessingOptions        []string `json:"data_processing_options,omitempty"`
	DataProcessingOptionsCountry *int     `json:"data_processing_options_country,omitempty"`
	DataProcessingOptionsState   *int     `json:"data_processing_options_state,omitempty"`
}

// UserData identifies the conversation per channel: WhatsApp sends the WABA id
// and ctwa_clid, Messenger the page id and PSID, Instagram the account id and
// IGSID. All of it is personal data: never log it.
type UserData struct {
	WhatsAppBusinessAccountID  string `json:"whatsapp_business_account_id,omitempty"`
	CtwaClid                   string `json:"ctwa_clid,omitempty"`
	PageID                     string `json:"page_id,omitempty"`
	PageScopedUserID           string `json:"page_scoped_user_id,omitempty"`
	InstagramBusinessAccountID string `json:"instagram_business_account_id,omitempty"`
	IGSID                      string `json:"ig_sid,omitempty"`
}
