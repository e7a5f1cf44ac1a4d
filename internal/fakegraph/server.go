// Package fakegraph is a fake of Meta's Graph API for tests and load runs: the
// Conversions API /{dataset_id}/events edge and the Dataset API
// /{business_id}/dataset. It checks what Meta checks (token, appsecret_proof,
// batch size, each event's name, time, source, channel ids and Purchase data)
// and answers with Meta's error shapes, records what it accepted, and injects
// faults on demand (errors, throttling, latency, lost responses).
//
// It is written independently of pkg/capi on purpose: it reads raw JSON and
// never imports the code under test, so a bug there cannot hide itself here.
// Sources are cited in pkg/capi's package comment; the rules that matter:
// "If any event you send in a batch is invalid, we reject the entire batch",
// up to 1,000 events in data, event_time at most 7 days old (Using the API);
// per-channel user_data and the event-name list (Business Messaging onboarding
// guide); error bodies and codes (Handling Errors, Rate Limits).
package fakegraph

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// DefaultToken is the only valid access token when Options.Tokens is empty.
const DefaultToken = "fake-graph-token"

// Options configures a Server.
type Options struct {
	Tokens    []string // valid access tokens; default {DefaultToken}
	AppSecret string   // when set, every call needs appsecret_proof = hex(HMAC-SHA256(AppSecret, token))
	// AppSecrets registers the secret of the app that issued a token
	// (token → secret); such a token needs a proof keyed with its secret,
	// whatever AppSecret says. More with SetAppSecret.
	AppSecrets map[string]string
	Version    string // when set, the only accepted version ("v27.0"); else any vN.N
	// Now is the fake's clock: it decides which versions have expired
	// (versions.go) and how old an event may be.
	Now func() time.Time
	// AutoUpgrade serves calls to expired versions as the next version,
	// with an X-Ad-Api-Version-Warning header, instead of refusing them
	// with code 2635 (the app setting "Ads API version auto-upgrade").
	AutoUpgrade bool
	// Datasets maps business ids to dataset ids that exist from the start.
	Datasets map[string]string
	// StrictDatasets refuses /events for dataset ids not in Datasets and not
	// created through the Dataset API (Meta's "object does not exist").
	StrictDatasets bool
	// RefuseDatasetRead answers GET /{business_id}/dataset as Meta does for
	// a WhatsApp Business Account ("Reading: You can't perform this
	// operation on this endpoint"): code 100, subcode 33. POST still works.
	RefuseDatasetRead bool
}

// Server is a running fake Graph API. All methods are safe for concurrent use,
// also while requests are in flight.
type Server struct {
	srv       *httptest.Server
	opts      Options
	closed    chan struct{} // closed by Close: ends Latency waits
	closeOnce sync.Once

	mu           sync.Mutex
	tokens       map[string]bool
	appSecrets   map[string]string // token → its app's secret
	events       []Event
	arrivals     map[string]int // RecordArrivals: event ids per request that arrived, nil: off
	requests     int
	headerNames  map[string]int // canonical header name → /events requests that carried it
	rejected     int
	inflight     int // /events requests being answered now
	peakInflight int
	faults       faults
	datasets     map[string]string // business id → dataset id
	datasetCalls []DatasetCall
	autoUpgrade  bool
	traceN       atomic.Int64

	versionWarnings atomic.Int64
}

// New starts a Server that t closes on cleanup.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s := NewServer(opts)
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a Server outside a test (a load harness); call Close.
func NewServer(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, closed: make(chan struct{}), tokens: map[string]bool{}, datasets: map[string]string{},
		appSecrets: map[string]string{}, autoUpgrade: opts.AutoUpgrade}
	s.SetTokens(opts.Tokens...)
	for tok, secret := range opts.AppSecrets {
		s.appSecrets[tok] = secret
	}
	for b, d := range opts.Datasets {
		s.datasets[b] = d
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the base URL to give a client (Graph's https://graph.facebook.com).
func (s *Server) URL() string { return s.srv.URL }

// Close shuts the server down; requests waiting out Latency end at once.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.srv.Close()
}

// SetTokens replaces the valid access tokens (none given: DefaultToken).
func (s *Server) SetTokens(tokens ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]bool{}
	if len(tokens) == 0 {
		tokens = []string{DefaultToken}
	}
	for _, t := range tokens {
		s.tokens[t] = true
	}
}

// SetAppSecret registers secret as the secret of the app that issued token:
// from now on token's calls need appsecret_proof = hex(HMAC-SHA256(secret,
// token)). An empty secret removes the registration.
func (s *Server) SetAppSecret(token, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if secret == "" {
		delete(s.appSecrets, token)
		return
	}
	s.appSecrets[token] = secret
}

// RevokeToken makes token invalid from now on (Meta answers code 190).
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
}

var versionRE = regexp.MustCompile(`^v\d+\.\d+$`)

// serve routes /{version}/{id}/{edge}.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 3 || !versionRE.MatchString(parts[0]) || (s.opts.Version != "" && parts[0] != s.opts.Version) {
		s.writeError(w, http.StatusBadRequest, graphError{Message: "Unknown path components: " + r.URL.Path,
			Type: "OAuthException", Code: 2500})
		return
	}
	id, edge := parts[1], parts[2]
	if !s.checkVersion(w, parts[0]) {
		if edge == "events" {
			s.mu.Lock()
			s.requests++
			s.rejected++
			s.mu.Unlock()
		}
		return
	}
	switch {
	case edge == "events" && r.Method == http.MethodPost:
		s.handleEvents(w, r, id)
	case edge == "dataset" && r.Method == http.MethodGet && s.opts.RefuseDatasetRead:
		s.writeError(w, http.StatusBadRequest, unsupported(r.Method, id))
	case edge == "dataset" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		s.handleDataset(w, r, id)
	default:
		s.writeError(w, http.StatusBadRequest, unsupported(r.Method, id))
	}
}

func unsupported(method, id string) graphError {
	return graphError{Type: "GraphMethodException", Code: 100, Subcode: 33,
		Message: fmt.Sprintf("Unsupported %s request. Object with ID '%s' does not exist, cannot be loaded "+
			"due to missing permissions, or does not support this operation.", strings.ToLower(method), id)}
}

// authenticate checks access_token (query, form body or Bearer header, as Graph
// takes it) and appsecret_proof. It returns the token, or the error to send.
func (s *Server) authenticate(r *http.Request, form map[string]string) (string, *graphError) {
	param := func(k string) string {
		if v := r.URL.Query().Get(k); v != "" {
			return v
		}
		return form[k]
	}
	token := param("access_token")
	if token == "" {
		token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	s.mu.Lock()
	valid := s.tokens[token]
	secret, own := s.appSecrets[token]
	s.mu.Unlock()
	if !own {
		secret = s.opts.AppSecret
	}
	switch {
	case token == "":
		return "", &graphError{Message: "An access token is required to request this resource.", Type: "OAuthException", Code: 104}
	case !valid:
		return "", &graphError{Message: "Invalid OAuth access token - Cannot parse access token", Type: "OAuthException", Code: 190}
	case secret == "":
		return token, nil
	}
	// Meta keys the proof with the secret of the app that issued the token
	// ("Securing Graph API Requests"); a wrong or missing one is HTTP 400,
	// OAuthException code 100.
	proof := param("appsecret_proof")
	if proof == "" {
		return "", &graphError{Message: "API calls from the server require an appsecret_proof argument", Type: "OAuthException", Code: 100}
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(token))
	if !hmac.Equal([]byte(proof), []byte(hex.EncodeToString(m.Sum(nil)))) {
		return "", &graphError{Message: "Invalid appsecret_proof provided in the API argument", Type: "OAuthException", Code: 100}
	}
	return token, nil
}

// graphError is the "error" object of "Handling Errors".
type graphError struct {
	Message     string `json:"message"`
	Type        string `json:"type"`
	Code        int    `json:"code"`
	Subcode     int    `json:"error_subcode,omitempty"`
	IsTransient bool   `json:"is_transient"`
	UserTitle   string `json:"error_user_title,omitempty"`
	UserMsg     string `json:"error_user_msg,omitempty"`
	FBTraceID   string `json:"fbtrace_id"`
}

func (s *Server) writeError(w http.ResponseWriter, status int, e graphError) {
	e.FBTraceID = s.traceID()
	if e.Code == 190 || e.Code == 104 {
		w.Header().Set("WWW-Authenticate", `OAuth "Facebook Platform" "invalid_token" "`+e.Message+`"`)
	}
	writeJSON(w, status, map[string]graphError{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// traceID returns a unique fbtrace_id-like value.
func (s *Server) traceID() string {
	return fmt.Sprintf("FakeTrace%06d", s.traceN.Add(1))
}
