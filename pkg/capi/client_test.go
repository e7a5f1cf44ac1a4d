package capi

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

const (
	testToken  = "EAAB-test-token-123"
	testSecret = "app-secret-456"
	// printf '%s' EAAB-test-token-123 | openssl dgst -sha256 -hmac app-secret-456
	testProof = "7e945efa098e47af97be0f79cca998bb0d3428cb2cdac643a27f122337d08e54"
)

// recorded is one request the fake API saw.
type recorded struct {
	Method, Path string
	Query        map[string][]string
	Header       http.Header
	Body         []byte
}

// graphStub is a hand-written fake Graph endpoint: it records every request and
// answers with status, header and body.
type graphStub struct {
	mu     sync.Mutex
	reqs   []recorded
	status int
	header map[string]string
	body   string
}

func newGraphStub(t *testing.T, status int, body string) (*graphStub, *httptest.Server) {
	t.Helper()
	g := &graphStub{status: status, body: body}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.reqs = append(g.reqs, recorded{r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone(), b})
		status, header, body := g.status, g.header, g.body
		g.mu.Unlock()
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return g, srv
}

func (g *graphStub) setHeader(h map[string]string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.header = h
}

func (g *graphStub) requests() []recorded {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]recorded(nil), g.reqs...)
}

// channelEvents are real-shaped events per channel (ids from the webhook and
// conversion fixtures; the click id is scrubbed).
var channelEvents = map[string]Event{
	"whatsapp": {
		EventName: "Purchase", EventTime: 1763900600, EventID: "ord-1001-purchase",
		ActionSource: ActionSource, MessagingChannel: ChannelWhatsApp,
		UserData:   UserData{WhatsAppBusinessAccountID: "102290129340398", CtwaClid: "ARAkLkA8rmlFeiCktEJQ-test"},
		CustomData: json.RawMessage(`{"currency":"USD","value":123,"order_id":"1001"}`),
	},
	"messenger": {
		EventName: "Purchase", EventTime: 1763900800, EventID: "ord-1003-purchase",
		ActionSource: ActionSource, MessagingChannel: ChannelMessenger,
		UserData:   UserData{PageID: "109876543210987", PageScopedUserID: "6789012345678901"},
		CustomData: json.RawMessage(`{"currency":"EUR","value":59.9}`),
	},
	"instagram": {
		EventName: "AddToCart", EventTime: 1763900900, EventID: "ord-1004-cart",
		ActionSource: ActionSource, MessagingChannel: ChannelInstagram,
		UserData:   UserData{InstagramBusinessAccountID: "17841405555555555", IGSID: "1234567890123456"},
		CustomData: json.RawMessage(`{"currency":"BRL","value":10,"content_ids":["sku-9"]}`),
	},
}

func TestSendGolden(t *testing.T) {
	for channel, ev := range channelEvents {
		t.Run(channel, func(t *testing.T) {
			g, srv := newGraphStub(t, 200, `{"events_received":1,"messages":[],"fbtrace_id":"AbC"}`)
			c := NewClient(Config{BaseURL: srv.URL + "/", Version: "v24.0", AppSecret: testSecret,
				PartnerAgent: "ctmpipe", TestEventCode: "TEST123"})
			resp, err := c.Send(t.Context(), "998877", testToken, []Event{ev})
			if err != nil {
				t.Fatalf("Send() error = %v", err)
			}
			if resp.EventsReceived != 1 || resp.FBTraceID != "AbC" {
				t.Errorf("Send() = %+v; want events_received 1, fbtrace_id AbC", resp)
			}
			reqs := g.requests()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests; want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.Path != "/v24.0/998877/events" {
				t.Errorf("request = %s %s; want POST /v24.0/998877/events", r.Method, r.Path)
			}
			if got := r.Query["access_token"]; len(got) != 1 || got[0] != testToken {
				t.Errorf("access_token = %q; want %q", got, testToken)
			}
			if got := r.Query["appsecret_proof"]; len(got) != 1 || got[0] != testProof {
				t.Errorf("appsecret_proof = %q; want %q", got, testProof)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q; want application/json", ct)
			}
			checkGolden(t, filepath.Join("testdata", channel+".golden.json"), r.Body)
		})
	}
}

func checkGolden(t *testing.T, path string, body []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, body, "", "  "); err != nil {
		t.Fatalf("request body is not JSON: %v", err)
	}
	pretty.WriteByte('\n')
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("request body differs from %s:\ngot:\n%s\nwant:\n%s", path, pretty.Bytes(), want)
	}
}

func TestSendWithoutAppSecretOmitsProof(t *testing.T) {
	g, srv := newGraphStub(t, 200, `{"events_received":1}`)
	c := NewClient(Config{BaseURL: srv.URL})
	if _, err := c.Send(t.Context(), "1", testToken, []Event{channelEvents["whatsapp"]}); err != nil {
		t.Fatalf("Send() error = %v", err)
	}
	r := g.requests()[0]
	if _, ok := r.Query["appsecret_proof"]; ok {
		t.Errorf("appsecret_proof sent without an app secret")
	}
	if r.Path != "/"+DefaultVersion+"/1/events" {
		t.Errorf("path = %s; want default version", r.Path)
	}
	var body map[string]json.RawMessage
	json.Unmarshal(r.Body, &body)
	for _, k := range []string{"partner_agent", "test_event_code"} {
		if _, ok := body[k]; ok {
			t.Errorf("body has %s though it is not configured", k)
		}
	}
}

func TestSendBatchLimits(t *testing.T) {
	g, srv := newGraphStub(t, 200, `{"events_received":1000}`)
	c := NewClient(Config{BaseURL: srv.URL})
	ev := channelEvents["messenger"]
	many := func(n int) []Event {
		out := make([]Event, n)
		for i := range out {
			out[i] = ev
		}
		return out
	}
	tests := []struct {
		name    string
		events  []Event
		token   string
		wantErr error
	}{
		{"empty", nil, testToken, ErrEmptyBatch},
		{"over max", many(MaxBatch + 1), testToken, ErrBatchTooLarge},
		{"no token", many(1), "", ErrNoToken},
		{"exactly max", many(MaxBatch), testToken, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Send(t.Context(), "1", tt.token, tt.events)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Send(%d events) error = %v; want %v", len(tt.events), err, tt.wantErr)
			}
			if err != nil && IsInDoubt(err) {
				t.Errorf("IsInDoubt(local refusal) = true")
			}
		})
	}
	if n := len(g.requests()); n != 1 {
		t.Errorf("server saw %d requests; want 1 (only the valid batch)", n)
	}
}

func TestSendParsesGraphError(t *testing.T) {
	const body = `{"error":{"message":"Invalid parameter","type":"OAuthException","code":100,
		"error_subcode":2804066,"is_transient":false,"error_user_title":"Invalid Event Type",
		"error_user_msg":"ctwa_clid ARAkLkA8rmlFeiCktEJQ-test is bad","fbtrace_id":"Xyz"}}`
	g, srv := newGraphStub(t, 400, body)
	g.setHeader(map[string]string{"X-App-Usage": `{"call_count":28,"total_time":25,"total_cputime":25}`})
	c := NewClient(Config{BaseURL: srv.URL})
	_, err := c.Send(t.Context(), "1", testToken, []Event{channelEvents["whatsapp"]})
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("Send() error = %v; want *APIError", err)
	}
	want := APIError{Op: "post events", Status: 400, Code: 100, Subcode: 2804066, Type: "OAuthException",
		Message: "Invalid parameter", UserTitle: "Invalid Event Type",
		UserMessage: "ctwa_clid ARAkLkA8rmlFeiCktEJQ-test is bad", FBTraceID: "Xyz", Usage: Usage{MaxPercent: 28}}
	if *ae != want {
		t.Errorf("APIError = %+v\nwant %+v", *ae, want)
	}
	if ae.Class() != Rejected || IsInDoubt(err) {
		t.Errorf("Class() = %v, IsInDoubt = %v; want rejected, false", ae.Class(), IsInDoubt(err))
	}
	for _, secret := range []string{testToken, "ARAkLkA8rmlFeiCktEJQ-test"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error text %q contains %q", err.Error(), secret)
		}
	}
	if !strings.Contains(ae.Detail(), "ctwa_clid") {
		t.Errorf("Detail() = %q; want Meta's full message for the dead letter", ae.Detail())
	}
}

func TestSendNonJSONErrorBody(t *testing.T) {
	_, srv := newGraphStub(t, 502, "<html><body>502 Bad Gateway</body></html>")
	c := NewClient(Config{BaseURL: srv.URL})
	_, err := c.Send(t.Context(), "1", testToken, []Event{channelEvents["whatsapp"]})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Code != 0 {
		t.Fatalf("Send() error = %v; want *APIError with status 502, code 0", err)
	}
	if ae.Class() != Retryable {
		t.Errorf("Class() = %v; want retryable", ae.Class())
	}
}

func TestSendSuccessProblems(t *testing.T) {
	tests := []struct{ name, body string }{
		{"unreadable", "OK"},
		{"short receipt", `{"events_received":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newGraphStub(t, 200, tt.body)
			c := NewClient(Config{BaseURL: srv.URL})
			ev := channelEvents["instagram"]
			_, err := c.Send(t.Context(), "1", testToken, []Event{ev, ev})
			if err == nil || !IsInDoubt(err) {
				t.Errorf("Send() error = %v; want an in-doubt error", err)
			}
		})
	}
}

func TestSendUsageOnSuccess(t *testing.T) {
	g, srv := newGraphStub(t, 200, `{"events_received":1}`)
	g.setHeader(map[string]string{"X-Business-Use-Case-Usage": `{"102290129340398":[{"type":"pages","call_count":97,"total_cputime":23,"total_time":23,"estimated_time_to_regain_access":2}]}`})
	c := NewClient(Config{BaseURL: srv.URL})
	resp, err := c.Send(t.Context(), "1", testToken, []Event{channelEvents["whatsapp"]})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Usage{MaxPercent: 97, RetryAfter: 2 * time.Minute}); resp.Usage != want {
		t.Errorf("Usage = %+v; want %+v", resp.Usage, want)
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	g, srv := newGraphStub(t, http.StatusTemporaryRedirect, "")
	g.setHeader(map[string]string{"Location": "http://example.invalid/steal"})
	c := NewClient(Config{BaseURL: srv.URL})
	_, err := c.Send(t.Context(), "1", testToken, []Event{channelEvents["whatsapp"]})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusTemporaryRedirect {
		t.Fatalf("Send() error = %v; want *APIError status 307", err)
	}
}

// TestSendReusesConnections: concurrent requests (the sender posts for up to
// 8 businesses at once per worker) keep their connections between bursts
// instead of dialling again (with TLS to Meta, a handshake each).
func TestSendReusesConnections(t *testing.T) {
	var dials atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"events_received":1,"fbtrace_id":"x"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := NewClient(Config{BaseURL: srv.URL, HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	const concurrent, bursts = 8, 6
	for range bursts {
		var wg sync.WaitGroup
		for range concurrent {
			wg.Go(func() {
				if _, err := c.Send(t.Context(), "123", "token", []Event{channelEvents["whatsapp"]}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	// Ideally concurrent connections in all; a burst may start before the
	// last one's connections are back in the pool and dial one more. Keeping
	// only 2 idle (net/http's default) dials about 6 a burst: 30+ in all.
	if n := dials.Load(); n > 2*concurrent {
		t.Errorf("%d connections for %d bursts of %d concurrent requests; want at most %d (kept idle between bursts)", n, bursts, concurrent, 2*concurrent)
	}
}

// A token issued by another app is proven with that app's secret, the rest
// with AppSecret: Meta refuses a proof keyed with any other secret.
func TestSendProofKeyedWithTheTokensAppSecret(t *testing.T) {
	g, srv := newGraphStub(t, 200, `{"events_received":1}`)
	c := NewClient(Config{BaseURL: srv.URL, AppSecret: "default-secret",
		AppSecrets: map[string]string{testToken: testSecret, "no-proof-token": ""}})
	for _, tok := range []string{testToken, "other-token", "no-proof-token"} {
		if _, err := c.Send(t.Context(), "1", tok, []Event{channelEvents["whatsapp"]}); err != nil {
			t.Fatalf("Send(%s) error = %v", tok, err)
		}
	}
	reqs := g.requests()
	want := []string{testProof, AppSecretProof("other-token", "default-secret"), ""}
	for i, r := range reqs {
		got := ""
		if v := r.Query["appsecret_proof"]; len(v) > 0 {
			got = v[0]
		}
		if got != want[i] {
			t.Errorf("request %d: appsecret_proof = %q; want %q", i, got, want[i])
		}
	}
}

// SendAs and DatasetAs use the credentials given, not the Config's: one
// client serves businesses with tokens of different apps and test codes.
func TestSendAsUsesTheBusinessesCredentials(t *testing.T) {
	g, srv := newGraphStub(t, 200, `{"events_received":1,"id":"77"}`)
	c := NewClient(Config{BaseURL: srv.URL, AppSecret: "default-secret", TestEventCode: "TESTDEFAULT", PartnerAgent: "default-agent"})
	cr := Credentials{Token: testToken, AppSecret: testSecret, TestEventCode: "TEST123", PartnerAgent: "agent-b"}
	if _, err := c.SendAs(t.Context(), "1", cr, []Event{channelEvents["whatsapp"]}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DatasetAs(t.Context(), "1001", cr); err != nil {
		t.Fatal(err)
	}
	for i, r := range g.requests() {
		if v := r.Query["appsecret_proof"]; len(v) != 1 || v[0] != testProof {
			t.Errorf("request %d: appsecret_proof = %v; want the business's", i, v)
		}
	}
	body := string(g.requests()[0].Body)
	if !strings.Contains(body, `"test_event_code":"TEST123"`) || !strings.Contains(body, `"partner_agent":"agent-b"`) {
		t.Errorf("body = %s; want the business's test_event_code and partner_agent", body)
	}
}
