// Package notify tells the partner's systems what an operator would want to
// know without watching the console: a business paused by Meta, resumed by
// an operator or recovered on its own, dead letters rising, the Graph API
// version about to expire. Each notification is a small JSON document of ids
// and reasons (never a token, a secret or a personal id), POSTed to every
// NOTIFY_URLS entry and signed with NOTIFY_SECRET (HMAC-SHA256 of the body,
// in X-Ctm-Signature-256, the way Meta signs webhooks).
//
// Publisher.Notify stores a notification in JetStream stream NOTIFY; a
// Deliverer posts it to each destination on a durable consumer of its own,
// retrying with backoff (internal/outbound) for up to NOTIFY_MAX_AGE, after
// which it becomes a dead letter on dlq.notify. The notification's id is its
// Nats-Msg-Id, so that the same occurrence told by several senders (each saw
// the pause) is stored once. Delivery is at least once: X-Ctm-Notification-Id
// lets a receiver drop a repeat.
package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// The notification types (docs/notifications.md has a JSON schema for each).
const (
	// TypeBusinessPaused: Meta refused a business's token, app secret,
	// permission or dataset; its conversions are parked until it is fixed.
	TypeBusinessPaused = "business.paused"
	// TypeBusinessResumed: an operator ended a pause (the admin API's or
	// the console's resume); the parked conversions go out.
	TypeBusinessResumed = "business.resumed"
	// TypeBusinessRecovered: a pause ended on its own: the probe after
	// PAUSE_INTERVAL was accepted by Meta.
	TypeBusinessRecovered = "business.recovered"
	// TypeDeadLettersRising: a business's dead letters reached
	// NOTIFY_DEAD_LETTERS_THRESHOLD within NOTIFY_DEAD_LETTERS_WINDOW.
	TypeDeadLettersRising = "dead_letters.rising"
	// TypeGraphVersionExpiring: GRAPH_API_VERSION expires within 90 days,
	// or has expired (told when a sender starts).
	TypeGraphVersionExpiring = "graph.version_expiring"
)

// Notification is the JSON body posted to each destination. Only ids,
// codes and reasons of our own wording: never Meta's message text (which
// may quote a user), a token or a personal id.
type Notification struct {
	// ID is unique per occurrence and the same for every sender that tells
	// it: the receiver's deduplication key.
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Time       time.Time `json:"time"`
	BusinessID string    `json:"business_id,omitempty"`
	// Reason says why, for a person: what happened and what to do.
	Reason string `json:"reason,omitempty"`
	// MetaError is Meta's error that paused the business.
	MetaError *MetaError `json:"meta_error,omitempty"`
	// PausedSince is when the pause began (paused, resumed, recovered).
	PausedSince *time.Time   `json:"paused_since,omitempty"`
	DeadLetters *DeadLetters `json:"dead_letters,omitempty"`
	Graph       *Graph       `json:"graph,omitempty"`
}

// MetaError is the Graph error of a pause: its numbers and our class.
type MetaError struct {
	Code    int    `json:"code"`
	Subcode int    `json:"subcode,omitempty"`
	Class   string `json:"class"`
}

// DeadLetters is what dead_letters.rising counts.
type DeadLetters struct {
	Count         int64  `json:"count"`
	Threshold     int    `json:"threshold"`
	WindowSeconds int64  `json:"window_seconds"`
	LastReason    string `json:"last_reason"` // the dead-letter reason that crossed it
}

// Graph is the Graph API version of graph.version_expiring.
type Graph struct {
	Version string `json:"version"`
	State   string `json:"state"`             // expiring or expired
	Expires string `json:"expires,omitempty"` // YYYY-MM-DD
	Newest  string `json:"newest"`            // the newest version this build knows
}

// HeaderSignature carries "sha256=" and the hex HMAC-SHA256 of the body
// keyed with NOTIFY_SECRET. HeaderID and HeaderType repeat the body's id
// and type, so that a receiver may route or drop before parsing.
const (
	HeaderSignature = "X-Ctm-Signature-256"
	HeaderID        = "X-Ctm-Notification-Id"
	HeaderType      = "X-Ctm-Notification-Type"
)

// Sign is the HeaderSignature value of body under secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether sig is body's HeaderSignature under secret, in
// constant time: what a receiver does first.
func Verify(secret string, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(sig))
}
