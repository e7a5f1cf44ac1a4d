package capi

import (
	"context"
	"net/http"
)

// Config configures a Client. Zero values take the defaults.
type Config struct {
	BaseURL       string // default https://graph.facebook.com
	Version       string // Graph API version, e.g. "v24.0"
	AppSecret     string // when set, requests carry appsecret_proof
	PartnerAgent  string
	TestEventCode string
	HTTPClient    *http.Client
}

// Client posts events to the Conversions API.
type Client struct {
	cfg Config
}

// NewClient returns a Client for cfg.
func NewClient(cfg Config) *Client {
	panic("TODO(capi helper)")
}

// Response is Meta's answer to an accepted /events request.
type Response struct {
	EventsReceived int      `json:"events_received"`
	Messages       []string `json:"messages"`
	FBTraceID      string   `json:"fbtrace_id"`
}

// Send posts events (at most MaxBatch) to /{datasetID}/events with token.
// A Graph API error comes back as *APIError.
func (c *Client) Send(ctx context.Context, datasetID, token string, events []Event) (Response, error) {
	panic("TODO(capi helper)")
}

// Dataset returns the dataset id of businessID: the existing one (GET
// /{business_id}/dataset), else a new one (POST /{business_id}/dataset).
func (c *Client) Dataset(ctx context.Context, businessID, token string) (string, error) {
	panic("TODO(capi helper)")
}
