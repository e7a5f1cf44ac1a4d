package registryapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// putRequest is the body of PUT /v1/businesses/{business_id}: the whole
// record (a PUT replaces; a field left out is unset).
type putRequest struct {
	Channel         string   `json:"channel"`
	DatasetID       string   `json:"dataset_id"`
	AccessToken     string   `json:"access_token"`
	AppSecret       string   `json:"app_secret"`
	TestEventCode   string   `json:"test_event_code"`
	PhoneNumberIDs  []string `json:"phone_number_ids"`
	RequireReferral *bool    `json:"require_referral"`
	AutomaticEvents bool     `json:"automatic_events"`
	Attribution     string   `json:"attribution"` // last_touch (also absent) or first_touch
	Enabled         *bool    `json:"enabled"`     // absent = true
	PartnerAgent    string   `json:"partner_agent"`
}

var putFields = []string{"channel", "dataset_id", "access_token", "app_secret", "test_event_code",
	"phone_number_ids", "require_referral", "automatic_events", "attribution", "enabled", "partner_agent"}

// unknownFieldHints are what a field from elsewhere is called here.
var unknownFieldHints = map[string]string{
	"access_token_env": `the API takes the token itself: send it as "access_token" (it is stored encrypted)`,
	"business_id":      "the business id goes in the path: PUT /v1/businesses/{business_id}",
	"id":               "the business id goes in the path: PUT /v1/businesses/{business_id}",
	"datasetid":        `did you mean "dataset_id"?`,
	"phone_number_id":  `did you mean "phone_number_ids" (a list)?`,
}

// decodePut reads the body strictly: one JSON object of known fields. The
// errors name the field and never quote a value (it may be a token).
func decodePut(r *http.Request) (putRequest, error) { return decodeOnto(r, putRequest{}) }

// decodeOnto decodes r's body onto req: the fields it holds replace req's,
// the others stay (PATCH).
func decodeOnto(r *http.Request, req putRequest) (putRequest, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return req, &httpError{status: http.StatusRequestEntityTooLarge, body: errorBody{Error: fmt.Sprintf("body is larger than %d bytes", MaxBodyBytes)}}
	}
	if err != nil {
		return req, badRequest("", "could not read the body")
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	err = d.Decode(&req)
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		return req, badRequest("", `body is empty: want a JSON object such as {"channel": "whatsapp", "access_token": "..."}`)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return req, badRequest("", "body is not valid JSON (it ends too early)")
	case errors.As(err, &se):
		return req, badRequest("", fmt.Sprintf("body is not valid JSON (at byte %d)", se.Offset))
	case errors.As(err, &te):
		if te.Field == "" {
			return req, badRequest("", "body must be a JSON object")
		}
		return req, badRequest(te.Field, fmt.Sprintf("%s: must be %s", te.Field, jsonKind(te.Type.Kind().String())))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		msg := fmt.Sprintf("unknown field %q", f)
		if h, ok := unknownFieldHints[strings.ToLower(f)]; ok {
			msg += ": " + h
		} else {
			msg += " (known fields: " + strings.Join(putFields, ", ") + ")"
		}
		return req, badRequest(f, msg)
	default:
		return req, badRequest("", "body is not a valid JSON object")
	}
	if d.More() {
		return req, badRequest("", "body has data after the JSON object")
	}
	return req, nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice":
		return "a list of strings"
	case "bool", "ptr":
		return "true or false"
	}
	return "of another type"
}

func (r putRequest) business(id string) registry.Business {
	enabled := r.Enabled == nil || *r.Enabled
	return registry.Business{ID: id, Channel: registry.Channel(r.Channel), DatasetID: r.DatasetID,
		AccessToken: registry.NewSecret(r.AccessToken), AppSecret: registry.NewSecret(r.AppSecret),
		TestEventCode: r.TestEventCode, PhoneNumberIDs: r.PhoneNumberIDs, RequireReferral: r.RequireReferral,
		AutomaticEvents: r.AutomaticEvents, Attribution: registry.Attribution(r.Attribution), Enabled: enabled, PartnerAgent: r.PartnerAgent}
}

// businessJSON is a record as the API shows it: secrets as set/unset.
type businessJSON struct {
	BusinessID       string      `json:"business_id"`
	Channel          string      `json:"channel"`
	DatasetID        string      `json:"dataset_id"`
	AccessTokenSet   bool        `json:"access_token_set"`
	AccessTokenLast4 string      `json:"access_token_last4,omitempty"`
	AppSecretSet     bool        `json:"app_secret_set"`
	TestEventCode    string      `json:"test_event_code"`
	PhoneNumberIDs   []string    `json:"phone_number_ids"`
	RequireReferral  *bool       `json:"require_referral"`
	AutomaticEvents  bool        `json:"automatic_events"`
	Attribution      string      `json:"attribution"`
	Enabled          bool        `json:"enabled"`
	PartnerAgent     string      `json:"partner_agent"`
	CreatedAt        time.Time   `json:"created_at"`
	UpdatedAt        time.Time   `json:"updated_at"`
	Health           *healthJSON `json:"health,omitempty"`
	// Unreadable marks a listed record that could not be decoded (only the
	// id, KeyID and Error are then set): one such record no longer fails
	// the whole list.
	Unreadable bool   `json:"unreadable,omitempty"`
	KeyID      string `json:"key_id,omitempty"`
	Error      string `json:"error,omitempty"`
}

// healthJSON is Health, or why there is none.
type healthJSON struct {
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	*Health
}

func toJSON(b registry.Business) businessJSON {
	phones := b.PhoneNumberIDs
	if phones == nil {
		phones = []string{}
	}
	return businessJSON{BusinessID: b.ID, Channel: string(b.Channel), DatasetID: b.DatasetID,
		AccessTokenSet: b.AccessToken.IsSet(), AccessTokenLast4: b.AccessToken.Last4(), AppSecretSet: b.AppSecret.IsSet(),
		TestEventCode: b.TestEventCode, PhoneNumberIDs: slices.Clone(phones), RequireReferral: b.RequireReferral,
		AutomaticEvents: b.AutomaticEvents, Attribution: string(b.Attribution.Or()), Enabled: b.Enabled, PartnerAgent: b.PartnerAgent,
		CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt}
}

// listJSON is a page of GET /v1/businesses.
type listJSON struct {
	Businesses []businessJSON `json:"businesses"`
	NextCursor string         `json:"next_cursor"` // "" on the last page
}
