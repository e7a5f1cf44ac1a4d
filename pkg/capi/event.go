// Package capi speaks Meta's Conversions API for Business Messaging: the wire
// types of an event, a client that posts batches to /{dataset_id}/events, the
// Dataset API, and a typed Graph API error with its classification.
package capi

import "encoding/json"

// ActionSource is the action_source of every business-messaging event.
const ActionSource = "business_messaging"

// MaxBatch is the most events one /events request may carry.
const MaxBatch = 1000

// Event is one server event as the Conversions API for Business Messaging
// takes it.
type Event struct {
	EventName        string          `json:"event_name"`
	EventTime        int64           `json:"event_time"`
	EventID          string          `json:"event_id,omitempty"`
	ActionSource     string          `json:"action_source"`
	MessagingChannel string          `json:"messaging_channel"`
	UserData         UserData        `json:"user_data"`
	CustomData       json.RawMessage `json:"custom_data,omitempty"`
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
