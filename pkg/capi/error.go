package capi

// Class says what a caller should do about an error.
type Class int

// The classes of Graph API errors.
const (
	// Retryable: transient or throttled; retry later with backoff.
	Retryable Class = iota + 1
	// Throttled: rate limited; retry later and slow down that business.
	Throttled
	// TokenInvalid: the access token is expired or revoked (code 190); pause
	// the business until an operator fixes the token.
	TokenInvalid
	// Rejected: the request (or an event in it) is invalid; retrying will not help.
	Rejected
)

// APIError is an error returned by the Graph API.
type APIError struct {
	Status      int    // HTTP status
	Code        int    // error.code
	Subcode     int    // error.error_subcode
	Type        string // error.type
	Message     string // error.message (may quote event fields; do not log raw)
	UserTitle   string
	UserMessage string
	FBTraceID   string
	Transient   bool // error.is_transient
}

func (e *APIError) Error() string {
	panic("TODO(capi helper)")
}

// Class classifies e.
func (e *APIError) Class() Class {
	panic("TODO(capi helper)")
}
