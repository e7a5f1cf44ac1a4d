package capi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Class says what a caller should do about an error.
type Class int

// The classes of Graph API errors.
const (
	// Retryable: transient; retry later with backoff.
	Retryable Class = iota + 1
	// Throttled: rate limited; retry later and slow down that business.
	Throttled
	// TokenInvalid: the access token is expired, revoked, missing a permission
	// or not proven with the right app secret; pause the business until an
	// operator fixes the credentials.
	TokenInvalid
	// Rejected: the request (or an event in it) is invalid; retrying will not help.
	Rejected
)

func (c Class) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case Throttled:
		return "throttled"
	case TokenInvalid:
		return "token_invalid"
	case Rejected:
		return "rejected"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// APIError is an error returned by the Graph API: its "error" object ("Handling
// Errors"), or only the HTTP status when the body was not a Graph error (a
// proxy's 502 page, say).
type APIError struct {
	Op          string // what the client was doing: "post events", "get dataset", ...
	Status      int    // HTTP status
	Code        int    // error.code; 0 when the body was not a Graph error
	Subcode     int    // error.error_subcode
	Type        string // error.type
	Message     string // error.message (may quote event fields; do not log raw)
	UserTitle   string // error.error_user_title
	UserMessage string // error.error_user_msg (may quote event fields; do not log raw)
	FBTraceID   string
	Transient   bool  // error.is_transient
	Usage       Usage // the rate-limit headers of the response
}

// Error describes e without Message and UserMessage, which may quote the
// event's personal data, and without the token. Use Detail for dead letters.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("capi: ")
	if e.Op != "" {
		b.WriteString(e.Op + ": ")
	}
	fmt.Fprintf(&b, "graph api error: status %d", e.Status)
	if e.Code != 0 {
		fmt.Fprintf(&b, ", code %d", e.Code)
	}
	if e.Subcode != 0 {
		fmt.Fprintf(&b, ", subcode %d", e.Subcode)
	}
	if e.Type != "" {
		fmt.Fprintf(&b, ", type %s", e.Type)
	}
	if e.UserTitle != "" {
		fmt.Fprintf(&b, ", title %q", truncate(e.UserTitle, 80))
	}
	if e.FBTraceID != "" {
		fmt.Fprintf(&b, ", fbtrace_id %s", e.FBTraceID)
	}
	return b.String()
}

// Detail is Meta's full explanation (message, user title and user message) for
// a dead letter. It may contain event data: store it, never log it.
func (e *APIError) Detail() string {
	parts := []string{e.Message, e.UserTitle, e.UserMessage}
	out := parts[:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return http.StatusText(e.Status)
	}
	return strings.Join(out, ": ")
}

// throttleCodes are the rate-limit codes of "Rate Limits": 4 (app), 17 (user),
// 32 (Pages API), 613 (custom rate limit) and the Business Use Case codes
// 80000-80014 (80000 Ads Insights, 80001 Pages, 80002 Instagram, 80003 Custom
// Audience, 80004 Ads Management, 80005 LeadGen, 80006 Messenger, 80008
// WhatsApp Business Management, 80009 Catalog Management, 80014 Catalog
// Batch; the gaps are kept in the range so a new BUC type is not taken for a
// bad request). "Handling Errors" adds 341 "Application limit reached" and
// 368 "Temporarily blocked for policies violations" (wait and retry).
func isThrottleCode(code int) bool {
	switch code {
	case 4, 17, 32, 341, 368, 613:
		return true
	}
	return code >= 80000 && code <= 80014
}

// Class classifies e. The order matters: a throttle error may also say
// is_transient, and a token error may come with any status.
//
//   - TokenInvalid: 190 "Access token has expired", 102 "API Session", 104
//     (no access token sent: "An access token is required to request this
//     resource"), subcodes 463 "Expired" and 467 "Invalid Access Token", 10
//     and 200-299 (permission not granted or removed), and code 100 about
//     appsecret_proof ("Invalid appsecret_proof provided in the API argument" /
//     "... require an appsecret_proof argument"): a credential fault that
//     every event of the business would hit, so the business is paused instead
//     of its events being dead-lettered one by one.
//   - Throttled: isThrottleCode, or HTTP 429.
//   - Retryable: HTTP 5xx, codes 1 "API Unknown" and 2 "API Service",
//     is_transient, HTTP 408, and any non-Graph error body but a 413 (a proxy
//     or load balancer answered, so Graph never judged the request).
//   - Rejected: the rest, notably 100 "Invalid parameter".
func (e *APIError) Class() Class {
	switch {
	case e.Code == 190 || e.Code == 102 || e.Code == 104 || e.Code == 10,
		e.Code >= 200 && e.Code <= 299,
		e.Subcode == 463 || e.Subcode == 467,
		e.Code == 100 && strings.Contains(e.Message, "appsecret_proof"):
		return TokenInvalid
	case isThrottleCode(e.Code), e.Status == http.StatusTooManyRequests:
		return Throttled
	case e.Status >= 500, e.Code == 1, e.Code == 2, e.Transient,
		e.Status == http.StatusRequestTimeout,
		e.Code == 0 && e.Status != http.StatusRequestEntityTooLarge:
		return Retryable
	}
	return Rejected
}

// graphError is the "error" object of a Graph API error response.
type graphError struct {
	Message     string  `json:"message"`
	Type        string  `json:"type"`
	Code        flexInt `json:"code"`
	Subcode     flexInt `json:"error_subcode"`
	IsTransient bool    `json:"is_transient"`
	UserTitle   string  `json:"error_user_title"`
	UserMsg     string  `json:"error_user_msg"`
	FBTraceID   string  `json:"fbtrace_id"`
}

// flexInt takes a JSON number or a numeric string: some Graph edges quote codes.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	n, err := strconv.Atoi(strings.Trim(string(b), `"`))
	if err != nil {
		return nil // an unreadable code is left 0 rather than losing the rest
	}
	*f = flexInt(n)
	return nil
}

func newAPIError(op string, status int, h http.Header, body []byte) *APIError {
	e := &APIError{Op: op, Status: status, Usage: parseUsage(h)}
	var env struct {
		Error *graphError `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		g := env.Error
		e.Code, e.Subcode, e.Type = int(g.Code), int(g.Subcode), g.Type
		e.Message, e.UserTitle, e.UserMessage = g.Message, g.UserTitle, g.UserMsg
		e.FBTraceID, e.Transient = g.FBTraceID, g.IsTransient
	}
	if e.FBTraceID == "" {
		e.FBTraceID = h.Get("X-Fb-Trace-Id")
	}
	return e
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
