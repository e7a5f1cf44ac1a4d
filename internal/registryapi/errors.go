package registryapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

// errorBody is every error answer: what is wrong and what to do, the field
// at fault for a 400, Meta's error for a 502.
type errorBody struct {
	Error string     `json:"error"`
	Field string     `json:"field,omitempty"`
	Meta  *metaError `json:"meta,omitempty"`
}

// metaError is Meta's answer to a Dataset API call, without the token.
type metaError struct {
	Status    int    `json:"status"`
	Code      int    `json:"code"`
	Subcode   int    `json:"subcode,omitempty"`
	Type      string `json:"type,omitempty"`
	Class     string `json:"class"`
	Message   string `json:"message,omitempty"`
	FBTraceID string `json:"fbtrace_id,omitempty"`
}

// httpError is an answer a handler decided on.
type httpError struct {
	status int
	body   errorBody
	cause  error // logged for a 5xx; never shown
}

func (e *httpError) Error() string { return e.body.Error }

func badRequest(field, msg string) *httpError {
	return &httpError{status: http.StatusBadRequest, body: errorBody{Error: msg, Field: field}}
}

func notFound(id string) *httpError {
	return &httpError{status: http.StatusNotFound, body: errorBody{
		Error: fmt.Sprintf("no business %s in the registry: create it with PUT /v1/businesses/%s", id, id)}}
}

// fail answers err as JSON; it is the one place errors become answers.
// Registry errors are mapped here; their texts never hold a secret.
func (a *api) fail(c echo.Context, err error) error {
	var he *httpError
	var ve *registry.ValidationError
	var pt *registry.PhoneTakenError
	switch {
	case errors.As(err, &he):
	case errors.As(err, &ve):
		he = badRequest(ve.Field, ve.Field+": "+ve.Msg)
	case errors.As(err, &pt):
		he = &httpError{status: http.StatusConflict, body: errorBody{Field: "phone_number_ids",
			Error: fmt.Sprintf("phone_number_id %s already belongs to business %s: remove it there first (PUT /v1/businesses/%s)", pt.PhoneNumberID, pt.Owner, pt.Owner)}}
	case errors.Is(err, registry.ErrNotFound):
		he = notFound(c.Param("business_id"))
	case errors.Is(err, registry.ErrNoKey):
		he = &httpError{status: http.StatusServiceUnavailable, cause: err, body: errorBody{
			Error: "this server has no REGISTRY_KEY, so it cannot store or read access_token and app_secret: set REGISTRY_KEY (base64 of 32 random bytes) on the admin server and restart it"}}
	case errors.Is(err, registry.ErrDecrypt):
		he = &httpError{status: http.StatusInternalServerError, cause: err, body: errorBody{
			Error: err.Error() + ": check REGISTRY_KEY (an older key may be missing), or PUT the record again with its secrets"}}
	case replicas.IsNotReplicated(err):
		// Perhaps stored on the primary, not yet on the replicas: a failover
		// could undo it, so the change is not reported as made.
		he = &httpError{status: http.StatusServiceUnavailable, cause: err, body: errorBody{
			Error: "the change was not confirmed by REDIS_MIN_REPLICAS Redis replicas in time (REDIS_REPLICA_TIMEOUT); it may not survive a failover: send it again"}}
	case errors.Is(err, context.DeadlineExceeded):
		he = &httpError{status: http.StatusGatewayTimeout, cause: err, body: errorBody{Error: "the registry did not answer in time; try again"}}
	default:
		he = &httpError{status: http.StatusServiceUnavailable, cause: err, body: errorBody{Error: "the registry store is unavailable; try again"}}
	}
	if he.status >= 500 {
		a.Log.Error("registry request failed", zap.String("route", c.Path()), zap.String("business_id", c.Param("business_id")),
			zap.Int("status_code", he.status), zap.Error(errOrBody(he)))
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(he.status, he.body)
}

func errOrBody(he *httpError) error {
	if he.cause != nil {
		return he.cause
	}
	return errors.New(he.body.Error)
}

// datasetError answers a failed Dataset API call: 502 with Meta's code,
// class and message when Meta answered, else 502 saying it could not be
// reached. secrets are cut out of Meta's message, which should never quote
// them but is not ours.
func datasetError(id string, err error, secrets ...string) *httpError {
	var ae *capi.APIError
	if !errors.As(err, &ae) {
		return &httpError{status: http.StatusBadGateway, cause: err, body: errorBody{Field: "dataset_id",
			Error: fmt.Sprintf("the Dataset API could not be reached to resolve the dataset of business %s: try again, or give dataset_id", id)}}
	}
	m := &metaError{Status: ae.Status, Code: ae.Code, Subcode: ae.Subcode, Type: ae.Type, Class: ae.Class().String(),
		Message: scrub(capi.Scrub(ae.Message), secrets...), FBTraceID: ae.FBTraceID}
	what := "fix the request, or give dataset_id"
	switch ae.Class() {
	case capi.SetupFault:
		what = "the access token is invalid, expired or lacks a permission or capability (or app_secret does not match it): fix access_token, or give dataset_id"
	case capi.Throttled, capi.Retryable:
		what = "try again later, or give dataset_id"
	}
	return &httpError{status: http.StatusBadGateway, cause: err, body: errorBody{Field: "dataset_id", Meta: m,
		Error: fmt.Sprintf("the Dataset API refused to resolve the dataset of business %s (Meta code %d, %s): %s", id, ae.Code, m.Class, what)}}
}

// scrub replaces every non-empty secret in s.
func scrub(s string, secrets ...string) string {
	for _, x := range secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, "[redacted]")
		}
	}
	return s
}
