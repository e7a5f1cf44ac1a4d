// Package attribution keeps the ad-click context of each conversation: which
// click started it, first and last seen, so that a later conversion can be
// joined to it. Contexts live in Redis (any go-redis UniversalClient: a single
// node, Sentinel or Cluster) and expire after a configurable window.
package attribution

import (
	"errors"
	"time"
)

// The channels, spelled as in the Conversions API's messaging_channel.
const (
	WhatsApp  = "whatsapp"
	Messenger = "messenger"
	Instagram = "instagram"
)

// DefaultTTL is how long a context lives after its last click when the
// operator sets no CONTEXT_TTL: 7 days, Meta's attribution window.
const DefaultTTL = 7 * 24 * time.Hour

// ErrNotFound means no context is stored for the key.
var ErrNotFound = errors.New("attribution: context not found")

// Key identifies a conversation: a user of a business on a channel.
type Key struct {
	Channel    string `json:"channel"`
	BusinessID string `json:"business_id"` // WABA id, page id or IG account id
	UserID     string `json:"user_id"`     // wa_id or BSUID, PSID or IGSID: personal data
}

// Touch is one ad click to record.
type Touch struct {
	Key
	// Aliases are other ids of the same user, each of which keys the
	// context too, so that a conversion naming any of them finds it. For
	// WhatsApp: the BSUID and parent BSUID when Key.UserID is the phone, and
	// messages[].from when it differs from wa_id (Meta, "Business-scoped
	// user IDs"). At most 3; duplicates of Key.UserID are ignored. Personal
	// data.
	Aliases       []string
	PhoneNumberID string    // WhatsApp Cloud API: resolves to Key.BusinessID
	ClickID       string    // ctwa_clid (WhatsApp)
	AdID          string    // source_id / ad_id
	SourceType    string    // "ad", "ADS", ...
	SourceURL     string    // WhatsApp referral.source_url
	Ref           string    // Messenger/Instagram referral.ref
	Time          time.Time // when the click reached the business
	// FirstTouch is the business's policy (registry field attribution):
	// keep the conversation's first click within the TTL instead of the
	// latest. A click with a ctwa_clid beats one without under either.
	FirstTouch bool
}

// Context is the stored ad-click context of a conversation. The click fields
// are those of the click reported (the latest, or under first touch the
// first, a click with a ctwa_clid before any without) and LastSeen is its
// time; FirstSeen is the time of the first click.
type Context struct {
	Key
	ClickID    string    `json:"ctwa_clid,omitempty"`
	AdID       string    `json:"ad_id,omitempty"`
	SourceType string    `json:"source_type,omitempty"`
	SourceURL  string    `json:"source_url,omitempty"`
	Ref        string    `json:"ref,omitempty"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	// NoClickID: a WhatsApp referral without ctwa_clid (ads in WhatsApp
	// Status, some EU leads): no conversion of it can be reported.
	NoClickID bool `json:"no_click_id,omitempty"`
	// FirstTouch: the context was written under the first-touch policy.
	FirstTouch bool `json:"first_touch,omitempty"`
}

// ErrInvalidTouch means Record was given a touch it cannot store: an unknown
// channel, a missing or malformed id (or alias), a time outside the Unix
// epoch in milliseconds (1970 to year 10889), or an oversized click field.
// Nothing of the call is stored then. Touch.Validate tells in advance.
var ErrInvalidTouch = errors.New("attribution: invalid touch")

// MaxClockSkew is how far ahead of its receipt a click's own time may lie.
// A click timestamped later than that is stored with the time it was
// received: otherwise a sender with a wrong clock (or a forged replay) would
// hold the "latest click" for as long as its timestamp stays in the future.
const MaxClockSkew = 10 * time.Minute

// ClickTime returns the time to store for a click that carries the time
// click (zero when the webhook had none) and was received at received
// (the rule of docs/webhooks.md, "Timestamps": a click without a timestamp,
// or more than MaxClockSkew in the future, counts as received now).
func ClickTime(click, received time.Time) time.Time {
	if click.IsZero() || click.After(received.Add(MaxClockSkew)) {
		return received
	}
	return click
}
