package intake

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// answer is an error with the status it answers. msg is what the client
// reads: it names rules and limits, never a value from the body.
type answer struct {
	status int
	msg    string
	cause  error // for the log; never sent
}

func (a *answer) Error() string {
	if a.cause != nil {
		return a.msg + ": " + a.cause.Error()
	}
	return a.msg
}

func (a *answer) Unwrap() error { return a.cause }

func badRequest(msg string) *answer { return &answer{status: http.StatusBadRequest, msg: msg} }

var (
	errDisabled  = &answer{status: http.StatusNotFound, msg: "intake disabled: INTAKE_TOKEN is not set"}
	errAuth      = &answer{status: http.StatusUnauthorized, msg: "missing or wrong bearer token"}
	errEmpty     = badRequest("body holds no conversion")
	errNotObject = badRequest("body must be a JSON object, a JSON array of objects, or NDJSON (Content-Type: " + ndjsonType + ")")
	errTooMany   = &answer{status: http.StatusRequestEntityTooLarge, msg: "more than " + strconv.Itoa(MaxItems) + " conversions in one body"}
	errNoneValid = badRequest("no valid conversion in the body")
	errSlowBody  = &answer{status: http.StatusRequestTimeout, msg: "body not received within INTAKE_ACK_TIMEOUT; send it again"}
	errBusy      = unavailable("intake busy: every INTAKE_CONCURRENCY slot stayed taken for INTAKE_ACK_TIMEOUT after the body was read", nil)
)

// unavailable is a 503: the client retries the whole body, and what was
// stored already comes back as duplicates (Nats-Msg-Id), never twice.
func unavailable(msg string, cause error) *answer {
	return &answer{status: http.StatusServiceUnavailable, msg: msg + "; retry the whole body (conversions already stored count as duplicates)", cause: cause}
}

// Invalid names one item that is not a valid conversion.
type Invalid struct {
	// Index is the item's 0-based position: in the array, or among the
	// non-blank lines of NDJSON.
	Index int `json:"index"`
	// EventID is the item's event_id when it could be read (the publisher's
	// own id, safe to echo); empty otherwise.
	EventID string `json:"event_id"`
	// Reason is the rule the item breaks (a *conversion.Error: a field and a
	// rule, never a value).
	Reason string `json:"reason"`
}

// Result is the JSON of a 202 (and of a 400 whose items are all invalid).
type Result struct {
	Accepted   int       `json:"accepted"`
	Duplicates int       `json:"duplicates"`
	Invalid    []Invalid `json:"invalid"`
}

// errorBody is the JSON of an error answer; a 400 for a body of invalid
// items also says which and why.
type errorBody struct {
	Error   string    `json:"error"`
	Invalid []Invalid `json:"invalid,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}
