package fakegraph

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestAccessToken(t *testing.T) {
	s := newTestServer(t, Options{Tokens: []string{"good", "other"}})
	ev := event("whatsapp", "a1")
	tests := []struct {
		name       string
		token      string
		wantStatus int
		wantCode   int
	}{
		{"missing", "", http.StatusBadRequest, 104},
		{"unknown", "forged", http.StatusBadRequest, 190},
		{"valid", "good", http.StatusOK, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := postEvents(t, s, tt.token, ev)
			if a.Status != tt.wantStatus || a.Error.Code != tt.wantCode {
				t.Errorf("token %q: answer = %d %s; want %d code %d", tt.token, a.Status, a.Body, tt.wantStatus, tt.wantCode)
			}
			if tt.wantCode != 0 && a.Error.Type != "OAuthException" {
				t.Errorf("type = %q; want OAuthException", a.Error.Type)
			}
		})
	}
	s.RevokeToken("good")
	wantGraphError(t, postEvents(t, s, "good", ev), http.StatusBadRequest, 190)
	if a := postEvents(t, s, "other", ev); a.Status != http.StatusOK {
		t.Errorf("other token after revoking good: %d", a.Status)
	}
	s.SetTokens("fresh")
	wantGraphError(t, postEvents(t, s, "other", ev), http.StatusBadRequest, 190)
	// Graph also takes the token as a Bearer header.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/"+NewestVersion+"/1/events",
		strings.NewReader(`{"data":[{"event_name":"LeadSubmitted","event_time":1763900600,"action_source":"business_messaging",
		"messaging_channel":"messenger","user_data":{"page_id":"1","page_scoped_user_id":"2"}}]}`))
	req.Header.Set("Authorization", "Bearer fresh")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("bearer token: %v %v", resp, err)
	}
	if err == nil {
		resp.Body.Close()
	}
	if len(s.Events()) != 3 {
		t.Errorf("recorded %d events; want the 3 accepted ones", len(s.Events()))
	}
}

func TestAppSecretProof(t *testing.T) {
	s := newTestServer(t, Options{Tokens: []string{"tok"}, AppSecret: "shh"})
	post := func(q url.Values) answer {
		t.Helper()
		return do(t, http.MethodPost, s.URL()+"/"+NewestVersion+"/1/events", q, "application/json",
			[]byte(`{"data":[{"event_name":"ViewContent","event_time":1763900600,"action_source":"business_messaging",
			"messaging_channel":"instagram","user_data":{"instagram_business_account_id":"1","ig_sid":"2"}}]}`))
	}
	tests := []struct {
		name     string
		proof    string
		wantCode int
		wantMsg  string
	}{
		{"missing", "", 100, "require an appsecret_proof"},
		{"wrong secret", proof("tok", "other"), 100, "Invalid appsecret_proof"},
		{"proof of another token", proof("tok2", "shh"), 100, "Invalid appsecret_proof"},
		{"correct", proof("tok", "shh"), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"access_token": {"tok"}}
			if tt.proof != "" {
				q.Set("appsecret_proof", tt.proof)
			}
			a := post(q)
			if tt.wantCode == 0 {
				if a.Status != http.StatusOK {
					t.Errorf("answer = %d %s; want 200", a.Status, a.Body)
				}
				return
			}
			wantGraphError(t, a, http.StatusBadRequest, tt.wantCode)
			if !strings.Contains(a.Error.Message, tt.wantMsg) {
				t.Errorf("message = %q; want %q", a.Error.Message, tt.wantMsg)
			}
		})
	}
}

// A token with its own app's secret registered needs a proof keyed with that
// secret, not the server-wide one; a token without needs none.
func TestAppSecretProofPerToken(t *testing.T) {
	s := newTestServer(t, Options{Tokens: []string{"tok", "plain"}, AppSecrets: map[string]string{"tok": "app-a"}})
	post := func(token, proof string) answer {
		t.Helper()
		q := url.Values{"access_token": {token}}
		if proof != "" {
			q.Set("appsecret_proof", proof)
		}
		return do(t, http.MethodPost, s.URL()+"/"+NewestVersion+"/1/events", q, "application/json",
			[]byte(`{"data":[{"event_name":"ViewContent","event_time":1763900600,"action_source":"business_messaging",
			"messaging_channel":"instagram","user_data":{"instagram_business_account_id":"1","ig_sid":"2"}}]}`))
	}
	for _, tt := range []struct {
		name, token, proof string
		wantStatus         int
	}{
		{"own secret", "tok", proof("tok", "app-a"), http.StatusOK},
		{"other secret", "tok", proof("tok", "app-b"), http.StatusBadRequest},
		{"two secrets joined", "tok", proof("tok", "app-a,app-b"), http.StatusBadRequest},
		{"missing", "tok", "", http.StatusBadRequest},
		{"unregistered token", "plain", "", http.StatusOK},
	} {
		a := post(tt.token, tt.proof)
		if a.Status != tt.wantStatus {
			t.Errorf("%s: answer = %d %s; want %d", tt.name, a.Status, a.Body, tt.wantStatus)
		}
		if tt.wantStatus != http.StatusOK && (a.Error.Code != 100 || a.Error.Type != "OAuthException") {
			t.Errorf("%s: error = %+v; want OAuthException code 100", tt.name, a.Error)
		}
	}
	s.SetAppSecret("plain", "app-c")
	if a := post("plain", ""); a.Status != http.StatusBadRequest {
		t.Errorf("after SetAppSecret, no proof: %d; want 400", a.Status)
	}
	if a := post("plain", proof("plain", "app-c")); a.Status != http.StatusOK {
		t.Errorf("after SetAppSecret, right proof: %d %s; want 200", a.Status, a.Body)
	}
}

func TestRouting(t *testing.T) {
	s := newTestServer(t, Options{Version: NewestVersion})
	q := url.Values{"access_token": {DefaultToken}}
	for _, path := range []string{"/v23.0/1/events", "/latest/1/events", "/" + NewestVersion + "/events", "/" + NewestVersion + "/1/2/events"} {
		if a := do(t, http.MethodPost, s.URL()+path, q, "application/json", []byte(`{}`)); a.Status != http.StatusBadRequest || a.Error.Code == 0 {
			t.Errorf("POST %s: %d %s; want a 400 Graph error", path, a.Status, a.Body)
		}
	}
	wantGraphError(t, do(t, http.MethodGet, s.URL()+"/"+NewestVersion+"/1/events", q, "", nil), http.StatusBadRequest, 100)
}

// Meta refuses an expired Marketing API version with code 2635, or, with
// auto-upgrade on, answers it as the next version with a warning header;
// which versions have expired depends on the day.
func TestExpiredVersions(t *testing.T) {
	q := url.Values{"access_token": {DefaultToken}}
	event := []byte(`{"data":[]}`)
	at := func(date string) func() time.Time {
		d, _ := time.Parse(time.DateOnly, date)
		return func() time.Time { return d }
	}
	tests := []struct {
		date, version string
		refused       bool
	}{
		{"2026-11-09", "v24.0", false},
		{"2026-11-10", "v24.0", true},
		{"2026-12-07", "v24.0", true},
		{"2026-12-07", "v25.0", false},
		{"2027-02-23", "v25.0", true},
		{"2027-02-23", "v26.0", false},
		{"2026-12-07", "v15.0", true},
		{"2026-12-07", NewestVersion, false},
	}
	for _, tt := range tests {
		s := newTestServer(t, Options{Now: at(tt.date)})
		a := do(t, http.MethodPost, s.URL()+"/"+tt.version+"/1/events", q, "application/json", event)
		if got := a.Error.Code == 2635; got != tt.refused || tt.refused && a.Status != http.StatusBadRequest {
			t.Errorf("%s on %s: %d %s; want refused with 2635: %v", tt.version, tt.date, a.Status, a.Body, tt.refused)
		}
		if tt.refused && !strings.Contains(a.Error.Message, "deprecated version of the Ads API") {
			t.Errorf("%s on %s: message %q; want Meta's", tt.version, tt.date, a.Error.Message)
		}
	}

	s := newTestServer(t, Options{Now: at("2026-12-07"), AutoUpgrade: true})
	a := do(t, http.MethodPost, s.URL()+"/v24.0/1/dataset", q, "", nil)
	if a.Status != http.StatusOK || !strings.Contains(a.Header.Get("X-Ad-Api-Version-Warning"), "v25.0") {
		t.Errorf("auto-upgraded call: %d %q; want 200 with a warning naming v25.0", a.Status, a.Header.Get("X-Ad-Api-Version-Warning"))
	}
	if a := do(t, http.MethodPost, s.URL()+"/v25.0/1/dataset", q, "", nil); a.Header.Get("X-Ad-Api-Version-Warning") != "" {
		t.Errorf("a current version carries a warning: %q", a.Header.Get("X-Ad-Api-Version-Warning"))
	}
	if s.VersionWarnings() != 1 {
		t.Errorf("VersionWarnings = %d; want 1", s.VersionWarnings())
	}
	s.SetAutoUpgrade(false)
	if a := do(t, http.MethodPost, s.URL()+"/v24.0/1/dataset", q, "", nil); a.Error.Code != 2635 {
		t.Errorf("auto-upgrade off: %d %s; want 2635", a.Status, a.Body)
	}
}
