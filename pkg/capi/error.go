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
	// SetupFault: the business's credentials or setup are wrong (token
	// expired or revoked, permission or capability missing, proof keyed
	// with the wrong secret, dataset missing or not allowed). Every event of
	// the business would fail the same way: pause the business until an
	// operator fixes it, and never dead-letter its events for it.
	SetupFault
	// Blocked: Meta blocked the app for a while (368, policy violation);
	// retry much later, the business waiting meanwhile.
	Blocked
	// Rejected: the request (or an event in it) is invalid; retrying will not help.
	Rejected
)

func (c Class) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case Throttled:
		return "throttled"
	case SetupFault:
		return "setup_fault"
	case Blocked:
		return "blocked"
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

// Rule is one line of the error table: which Graph errors it matches (Codes,
// as docs/graph-errors.md lists them) and their Class.
type Rule struct {
	Codes string // e.g. "10, 200-299" or "100 + subcode 33"
	Class Class
	Why   string // Meta's name for the error, or the reason for the class
	match func(e *APIError) bool
}

func codeIn(lo, hi int) func(*APIError) bool {
	return func(e *APIError) bool { return e.Code >= lo && e.Code <= hi }
}

func codeIs(codes ...int) func(*APIError) bool {
	return func(e *APIError) bool {
		for _, c := range codes {
			if e.Code == c {
				return true
			}
		}
		return false
	}
}

// ErrorTable is how the sender treats each Graph API error, in one place. The
// first rule that matches wins, so the order matters: a throttle error may
// also say is_transient, a setup fault may come with any status.
//
// Sources: Graph API "Handling Errors"
// (https://developers.facebook.com/docs/graph-api/guides/error-handling):
// 1 API Unknown and 2 API Service ("retry"), 3 API Method ("capability or
// permissions issue"), 4 and 17 and 32 and 613 rate limits, 10 and 200-299
// API Permission ("permission ... not granted or removed"), 100 Invalid
// parameter, 102 API Session and 190 access token ("get a new token"), 341
// "Application limit reached", 368 "Temporarily blocked for policies
// violations" ("wait and retry the operation"); subcodes 463 expired, 467
// invalid token. Subcode 33 of code 100 is Graph's "Object with ID ... does
// not exist, cannot be loaded due to missing permissions, or does not
// support this operation": the dataset or the business is missing or not
// allowed, a setup fault rather than a bad event. "Rate Limits" gives the
// Business Use Case codes 80000-80014 (the gaps are kept in the range so a
// new BUC type is not taken for a bad request).
// 2635 is the Marketing API's "You are calling a deprecated version of the
// Ads API" (versions.go): every request of every business fails the same way
// until GRAPH_API_VERSION is changed, so it is a setup fault, not a bad event.
var ErrorTable = []Rule{
	{"2635", SetupFault, "deprecated Marketing API version: set GRAPH_API_VERSION to a supported version and restart",
		codeIs(CodeDeprecatedVersion)},
	{"190, 102, 104; subcodes 463, 467", SetupFault, "access token expired, invalid or missing: get a new token",
		func(e *APIError) bool {
			return e.Code == 190 || e.Code == 102 || e.Code == 104 || e.Subcode == 463 || e.Subcode == 467
		}},
	{"3", SetupFault, "API Method: the app lacks the capability (e.g. the dataset API or the messaging events permission)", codeIs(3)},
	{"10, 200-299", SetupFault, "API Permission: a permission was not granted or was removed",
		func(e *APIError) bool { return e.Code == 10 || e.Code >= 200 && e.Code <= 299 }},
	{"100 + subcode 33", SetupFault, "object does not exist, cannot be loaded for missing permissions, or does not support the operation",
		func(e *APIError) bool { return e.Code == 100 && e.Subcode == 33 }},
	{"100 naming appsecret_proof", SetupFault, "Invalid appsecret_proof: the proof is keyed with a secret other than the token's app's",
		func(e *APIError) bool {
			// Meta's two texts, matched whole: a rejection that merely quotes
			// the request URL also names appsecret_proof.
			return e.Code == 100 && (strings.Contains(e.Message, "Invalid appsecret_proof") ||
				strings.Contains(e.Message, "require an appsecret_proof"))
		}},
	{"368", Blocked, "Temporarily blocked for policies violations: wait and retry", codeIs(368)},
	{"4, 17, 32, 341, 613, 80000-80014; HTTP 429", Throttled, "rate limited: retry later, slower",
		func(e *APIError) bool {
			return codeIs(4, 17, 32, 341, 613)(e) || codeIn(80000, 80014)(e) || e.Status == http.StatusTooManyRequests
		}},
	{"1, 2; is_transient; HTTP 5xx, 408; a non-Graph body but 413", Retryable, "transient: retry with backoff",
		func(e *APIError) bool {
			return e.Status >= 500 || e.Code == 1 || e.Code == 2 || e.Transient || e.Status == http.StatusRequestTimeout ||
				e.Code == 0 && e.Status != http.StatusRequestEntityTooLarge // a proxy answered: Graph never judged it
		}},
	{"anything else (notably 100)", Rejected, "the request or an event in it is invalid: isolate and dead-letter",
		func(*APIError) bool { return true }},
}

// Class classifies e by ErrorTable.
func (e *APIError) Class() Class { return e.Rule().Class }

// Rule is the line of ErrorTable that classifies e: its Why says what to do.
func (e *APIError) Rule() Rule {
	for _, r := range ErrorTable {
		if r.match(e) {
			return r
		}
	}
	return ErrorTable[len(ErrorTable)-1]
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

// newAPIError reads a Graph error answer to a request made with token; its
// texts are scrubbed of token and of anything else that looks like a secret.
func newAPIError(op string, status int, h http.Header, body []byte, token string) *APIError {
	e := &APIError{Op: op, Status: status, Usage: parseUsage(h)}
	var env struct {
		Error *graphError `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		g := env.Error
		e.Code, e.Subcode, e.Type = int(g.Code), int(g.Subcode), g.Type
		e.Message, e.UserTitle, e.UserMessage = Scrub(g.Message, token), Scrub(g.UserTitle, token), Scrub(g.UserMsg, token)
		e.Type = Scrub(e.Type, token)
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
