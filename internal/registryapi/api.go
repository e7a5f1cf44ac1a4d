// Package registryapi is the admin HTTP API of the business registry:
// create, replace, show, list and delete businesses, and resume a paused
// one. Register mounts it on an echo group; the caller's group middleware
// does the authentication (bearer ADMIN_TOKEN on the admin listener).
//
// No answer and no log line carries a secret: records show
// access_token_set, access_token_last4 and app_secret_set only.
package registryapi

import (
	"context"
	"errors"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// credentialResolver is a DatasetResolver that signs with a business's own
// app secret (capi.Client).
type credentialResolver interface {
	DatasetAs(ctx context.Context, businessID string, cr capi.Credentials) (string, error)
}

// DatasetResolver finds (or creates) a business's dataset with the Dataset
// API; *capi.Client is one.
type DatasetResolver interface {
	Dataset(ctx context.Context, businessID, token string) (string, error)
}

// HealthSource reports how a business is doing on the senders. The sender
// implements it; until then NoHealth answers. aliases are the other ids its
// conversions may be published and counted under (a WABA's
// phone_number_ids); their counters are added to the business's.
type HealthSource interface {
	Health(ctx context.Context, businessID string, aliases []string) (Health, error)
}

// Health is a business's state on the senders.
type Health struct {
	Paused       *Pause     `json:"paused"`           // nil: not paused
	LastAccepted *time.Time `json:"last_accepted_at"` // Meta's last 2xx for the business
	Sent24h      int64      `json:"sent_24h"`         // events Meta accepted in the last 24 h
	// DeadLettered24h counts dead letters of the last 24 h by reason.
	DeadLettered24h map[string]int64 `json:"dead_letters_24h"`
	Conversions24h  int64            `json:"conversions_24h"` // conversions the senders took in
	Contexts24h     int64            `json:"contexts_24h"`    // ad clicks ingest stored
	// Requests24h is how many Conversions API requests Meta accepted for
	// the business: the calls its sends spent of Meta's rate limits.
	Requests24h int64 `json:"requests_24h"`
}

// Pause says why a business's sending is paused: Meta's error code and
// class (capi.Class's name, e.g. "setup_fault") and message. A pause
// recorded by an older sender says only that it is paused: Since, Code and
// Class are then zero.
type Pause struct {
	Since   time.Time `json:"since"`
	Code    int       `json:"code"`
	Subcode int       `json:"subcode,omitempty"`
	Class   string    `json:"class"`
	Message string    `json:"message,omitempty"`
	Fix     string    `json:"fix,omitempty"`     // what to do (the sender's error table)
	Version string    `json:"version,omitempty"` // GRAPH_API_VERSION refused with code 2635
}

// ErrNoHealth is NoHealth's answer.
var ErrNoHealth = errors.New("no health source: the sender does not report to this admin API")

// NoHealth is the HealthSource used when Deps.Health is nil.
type NoHealth struct{}

// Health answers ErrNoHealth.
func (NoHealth) Health(context.Context, string, []string) (Health, error) {
	return Health{}, ErrNoHealth
}

// Resumer ends a business's pause on every sender and sends its parked
// messages back. The sender implements it.
type Resumer interface {
	Resume(ctx context.Context, businessID string) (ResumeResult, error)
}

// ResumeResult says what a resume did.
type ResumeResult struct {
	WasPaused bool // a pause was ended
	Parked    int  // parked messages being sent back
}

// Deps are what the handlers use. Store is required; the rest may be nil.
type Deps struct {
	Store *registry.Store
	// Datasets resolves dataset_id when a PUT leaves it out; nil: dataset_id
	// is required.
	Datasets DatasetResolver
	Health   HealthSource // nil: NoHealth
	Resumer  Resumer      // nil: resume answers 503
	// DefaultToken (CAPI_ACCESS_TOKEN) resolves the dataset of a business
	// registered without its own token. It is scrubbed from Meta's messages.
	DefaultToken string
	Log          *zap.Logger   // nil: no logs
	Timeout      time.Duration // per request, for Redis and the Dataset API; default 15 s
}

// The request limits.
const (
	MaxBodyBytes   = 64 << 10
	defaultTimeout = 15 * time.Second
)

type api struct{ Deps }

// Register mounts the registry's routes on g:
//
//	PUT    /v1/businesses/:business_id         create (201) or replace (200)
//	GET    /v1/businesses/:business_id         the record and its health
//	GET    /v1/businesses?cursor=&limit=       a page of records
//	DELETE /v1/businesses/:business_id         204
//	PATCH  /v1/businesses/:business_id         200: the fields given replace the record's
//	POST   /v1/businesses/:business_id/resume  202 (resumed) or 204 (was not paused)
func Register(g *echo.Group, d Deps) {
	if d.Store == nil {
		panic("registryapi: Register without a Store")
	}
	if d.Health == nil {
		d.Health = NoHealth{}
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Timeout <= 0 {
		d.Timeout = defaultTimeout
	}
	d.Log = d.Log.With(zap.String("component", "registryapi"))
	a := &api{d}
	g.PUT("/v1/businesses/:business_id", a.put)
	g.GET("/v1/businesses/:business_id", a.get)
	g.GET("/v1/businesses", a.list)
	g.DELETE("/v1/businesses/:business_id", a.delete)
	g.PATCH("/v1/businesses/:business_id", a.patch)
	g.POST("/v1/businesses/:business_id/resume", a.resume)
}
