package capi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults for a zero Config.
const (
	DefaultBaseURL = "https://graph.facebook.com"
	// DefaultTimeout bounds one request. Meta's troubleshooting page suggests
	// 1500 ms; we wait longer on purpose: a timeout after the request was
	// written leaves the batch in doubt, which costs more than waiting.
	DefaultTimeout = 30 * time.Second
)

// Errors the client returns before sending anything.
var (
	ErrEmptyBatch    = errors.New("capi: empty batch")
	ErrBatchTooLarge = errors.New("capi: batch larger than MaxBatch events")
	ErrNoToken       = errors.New("capi: no access token")
	ErrNoID          = errors.New("capi: empty dataset or business id")
)

// Config configures a Client. Zero values take the defaults.
type Config struct {
	BaseURL string // default https://graph.facebook.com
	Version string // Marketing API version, e.g. "v27.0" (versions.go); default DefaultVersion
	// AppSecret is the secret of the app that issued the tokens (one
	// secret, never a list): when set, requests carry appsecret_proof.
	AppSecret string
	// AppSecrets overrides AppSecret per access token, for tokens issued by
	// other apps (a partner serving businesses through apps of their own).
	AppSecrets    map[string]string
	PartnerAgent  string
	TestEventCode string
	HTTPClient    *http.Client // default: DefaultTimeout; redirects are never followed
}

// Client posts events to the Conversions API. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
}

// NewClient returns a Client for cfg.
func NewClient(cfg Config) *Client {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	hc := http.Client{Timeout: DefaultTimeout}
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	if hc.Transport == nil {
		hc.Transport = newTransport()
	}
	// A redirect would carry the token in the query string to another URL.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{cfg: cfg, http: &hc}
}

// MaxIdleConnsPerHost is how many idle connections to the Graph API the
// client keeps. net/http's default transport keeps 2 per host, so a sender
// posting for several businesses at once (up to 8 requests per batch per
// worker) closed the others after each request and dialled them again:
// a TCP and TLS handshake per request, 5.7% of the sender's CPU against the
// local sink (plain HTTP) in scripts/bench-sender.sh.
const MaxIdleConnsPerHost = 64

// Response is Meta's answer to an accepted /events request.
type Response struct {
	EventsReceived int      `json:"events_received"`
	Messages       []string `json:"messages"`
	FBTraceID      string   `json:"fbtrace_id"`
	Usage          Usage    `json:"-"` // the rate-limit headers of the response
	// VersionWarning is Meta's X-Ad-Api-Version-Warning: the request named
	// an expired version and Meta answered it as a newer one (versions.go).
	VersionWarning string `json:"-"`
}

type eventsBody struct {
	Data          []Event `json:"data"`
	PartnerAgent  string  `json:"partner_agent,omitempty"`
	TestEventCode string  `json:"test_event_code,omitempty"`
}

// Send posts events (1 to MaxBatch) to /{datasetID}/events with token, as
// "Using the API" shows: a JSON body {"data": [...], "partner_agent",
// "test_event_code"} and the access_token (with appsecret_proof when an app
// secret is configured) as query parameters.
//
// Meta rejects the whole batch if any event is invalid. A Graph API error comes
// back as *APIError; a request without an answer as *TransportError (see
// IsInDoubt). Error texts never contain the token or event contents.
func (c *Client) Send(ctx context.Context, datasetID, token string, events []Event) (Response, error) {
	return c.SendAs(ctx, datasetID, c.credentials(token), events)
}

// Credentials are what one business's requests are made with: its access
// token, the secret of the app that issued it (for appsecret_proof; "" for
// none), and the test_event_code and partner_agent of its requests ("" for
// none). SendAs and DatasetAs take them as they are, without the Config's
// defaults, so that one Client serves many businesses.
type Credentials struct {
	Token, AppSecret, TestEventCode, PartnerAgent string
}

// credentials are the Config's credentials for token.
func (c *Client) credentials(token string) Credentials {
	return Credentials{Token: token, AppSecret: c.appSecret(token), TestEventCode: c.cfg.TestEventCode, PartnerAgent: c.cfg.PartnerAgent}
}

// SendAs is Send with cr instead of the Config's token, app secret, test
// event code and partner agent.
func (c *Client) SendAs(ctx context.Context, datasetID string, cr Credentials, events []Event) (Response, error) {
	const op = "post events"
	token := cr.Token
	switch {
	case len(events) == 0:
		return Response{}, ErrEmptyBatch
	case len(events) > MaxBatch:
		return Response{}, fmt.Errorf("%w: %d events", ErrBatchTooLarge, len(events))
	case token == "":
		return Response{}, ErrNoToken
	case datasetID == "":
		return Response{}, ErrNoID
	}
	// A fresh buffer each time, not a pooled one: net/http may still be
	// writing a request body after Do returned (a timeout, an early answer).
	body, err := appendEventsBody(make([]byte, 0, 64+256*len(events)), events, cr.PartnerAgent, cr.TestEventCode)
	if err != nil {
		return Response{}, fmt.Errorf("capi: encode events: %w", err)
	}
	r, err := c.do(ctx, op, http.MethodPost, c.url(datasetID, "events", token, cr.AppSecret), token, body)
	if err != nil {
		return Response{}, err
	}
	if r.status/100 != 2 {
		return Response{}, newAPIError(op, r.status, r.header, r.body, token)
	}
	var resp Response
	if err := json.Unmarshal(r.body, &resp); err != nil {
		return Response{}, &TransportError{Op: op, InDoubt: true,
			Err: fmt.Errorf("unreadable response to status %d", r.status)}
	}
	resp.Usage = parseUsage(r.header)
	resp.VersionWarning = truncate(Scrub(r.header.Get(HeaderVersionWarning), token), 200)
	if resp.EventsReceived != len(events) {
		// Meta's batches are all or nothing, so this should not happen; if it
		// does, some events may have been taken.
		return resp, &TransportError{Op: op, InDoubt: true,
			Err: fmt.Errorf("meta received %d of %d events", resp.EventsReceived, len(events))}
	}
	return resp, nil
}

// Dataset returns the dataset id of businessID (a page id, WABA id or
// Instagram account id) with POST /{business_id}/dataset alone. Meta's
// "WhatsApp Business Account Dataset" reference
// (https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account/dataset/)
// says of reading "You can't perform this operation on this endpoint" and of
// creating "When posting to this edge, no Graph object will be created": the
// POST returns the existing dataset, and the onboarding guide says the same
// for pages ("If there is already an existing dataset_id associated with the
// page, it will return that id"). So the POST is idempotent, a race between
// two senders is harmless, and a GET (refused for a WABA) is never needed.
// An answer {"id": ...} or a list {"data": [{"id": ...}]} is read.
func (c *Client) Dataset(ctx context.Context, businessID, token string) (string, error) {
	return c.DatasetAs(ctx, businessID, c.credentials(token))
}

// DatasetAs is Dataset with cr's token and app secret (the business's own),
// instead of the Config's.
func (c *Client) DatasetAs(ctx context.Context, businessID string, cr Credentials) (string, error) {
	token := cr.Token
	switch {
	case token == "":
		return "", ErrNoToken
	case businessID == "":
		return "", ErrNoID
	}
	const op = "create dataset"
	id, err := c.datasetCall(ctx, op, http.MethodPost, c.url(businessID, "dataset", token, cr.AppSecret), token)
	if err == nil && id == "" {
		return "", &TransportError{Op: op, Err: errors.New("response has no dataset id")}
	}
	return id, err
}

func (c *Client) datasetCall(ctx context.Context, op, method, u, token string) (string, error) {
	r, err := c.do(ctx, op, method, u, token, nil)
	if err != nil {
		return "", err
	}
	if r.status/100 != 2 {
		return "", newAPIError(op, r.status, r.header, r.body, token)
	}
	var out struct {
		ID   string `json:"id"`
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		return "", &TransportError{Op: op, Err: fmt.Errorf("unreadable response to status %d", r.status)}
	}
	if out.ID == "" && len(out.Data) > 0 {
		out.ID = out.Data[0].ID
	}
	return out.ID, nil
}

// url builds {BaseURL}/{Version}/{id}/{edge}?access_token=...&appsecret_proof=...
// The token goes in the query string as Meta's samples show
// ("/events?access_token={TOKEN}"); transport errors drop the URL (scrub).
func (c *Client) url(id, edge, token, secret string) string {
	q := url.Values{"access_token": {token}}
	if secret != "" {
		q.Set("appsecret_proof", AppSecretProof(token, secret))
	}
	return c.cfg.BaseURL + "/" + url.PathEscape(c.cfg.Version) + "/" + url.PathEscape(id) + "/" + edge + "?" + q.Encode()
}

// appSecret is the secret that proves token: Meta keys the proof with the
// secret of the app that issued the token, so a proof keyed with any other
// secret is refused (code 100 "Invalid appsecret_proof provided in the API
// argument"). "" means no proof.
func (c *Client) appSecret(token string) string {
	if s, ok := c.cfg.AppSecrets[token]; ok {
		return s
	}
	return c.cfg.AppSecret
}

// AppSecretProof is "a sha256 hash of your access token, using the app secret
// as the key" (Securing Graph API Requests): hex(HMAC-SHA256(key=appSecret,
// message=token)).
func AppSecretProof(token, appSecret string) string {
	m := hmac.New(sha256.New, []byte(appSecret))
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}
