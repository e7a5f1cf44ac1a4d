package fakegraph

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// now is the fixed clock of the tests.
var now = time.Unix(1763900600, 0)

func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return now }
	}
	return New(t, opts)
}

// answer is a decoded fake response.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
	Error  graphError
	OK     struct {
		EventsReceived int    `json:"events_received"`
		FBTraceID      string `json:"fbtrace_id"`
	}
}

// do sends a request with the given query parameters and JSON body.
func do(t *testing.T, method, u string, query url.Values, contentType string, body []byte) answer {
	t.Helper()
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	a := answer{Status: resp.StatusCode, Header: resp.Header}
	a.Body, _ = io.ReadAll(resp.Body)
	var env struct {
		Error graphError `json:"error"`
	}
	if json.Unmarshal(a.Body, &env) == nil {
		a.Error = env.Error
	}
	json.Unmarshal(a.Body, &a.OK)
	return a
}

// postEvents posts {"data": events} to dataset 1 with token.
func postEvents(t *testing.T, s *Server, token string, events ...map[string]any) answer {
	t.Helper()
	body, err := json.Marshal(map[string]any{"data": events})
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{}
	if token != "" {
		q.Set("access_token", token)
	}
	return do(t, http.MethodPost, s.URL()+"/"+NewestVersion+"/1/events", q, "application/json", body)
}

// event returns a valid event of channel; change it with set.
func event(channel, id string, set ...func(map[string]any)) map[string]any {
	ud := map[string]any{
		"whatsapp":  map[string]any{"whatsapp_business_account_id": "102290129340398", "ctwa_clid": "ARAk-test"},
		"messenger": map[string]any{"page_id": "109876543210987", "page_scoped_user_id": "6789012345678901"},
		"instagram": map[string]any{"instagram_business_account_id": "17841405555555555", "ig_sid": "1234567890123456"},
	}[channel]
	e := map[string]any{
		"event_name": "Purchase", "event_time": now.Unix(), "event_id": id,
		"action_source": "business_messaging", "messaging_channel": channel, "user_data": ud,
		"custom_data": map[string]any{"currency": "USD", "value": 12.5},
	}
	for _, f := range set {
		f(e)
	}
	return e
}

func proof(token, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

func wantGraphError(t *testing.T, a answer, status, code int) {
	t.Helper()
	if a.Status != status || a.Error.Code != code {
		t.Fatalf("answer = %d %s; want status %d, code %d", a.Status, a.Body, status, code)
	}
	if a.Error.FBTraceID == "" || a.Error.Type == "" || a.Error.Message == "" {
		t.Errorf("error %s lacks message, type or fbtrace_id", a.Body)
	}
}

func many(n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = event("whatsapp", fmt.Sprintf("e%d", i))
	}
	return out
}
