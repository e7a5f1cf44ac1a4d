package registryapi

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

func TestAuth(t *testing.T) {
	ta := newTestAPI(t, apiOpts{})
	routes := []struct{ method, path, body string }{
		{"PUT", "/v1/businesses/111", waBody},
		{"GET", "/v1/businesses/111", ""},
		{"GET", "/v1/businesses", ""},
		{"DELETE", "/v1/businesses/111", ""},
		{"POST", "/v1/businesses/111/resume", ""},
	}
	for _, r := range routes {
		for _, auth := range []string{"", "Bearer wrong", "Basic " + adminToken, "Bearer " + adminToken + "x"} {
			if status, body := ta.doAuth(r.method, r.path, r.body, auth); status != http.StatusUnauthorized {
				t.Errorf("%s %s with %q = %d %s; want 401", r.method, r.path, auth, status, body)
			}
		}
	}
	if status, _ := ta.do("GET", "/v1/businesses/111", ""); status != http.StatusNotFound {
		t.Errorf("the right token = %d; want past auth (404)", status)
	}
	if len(ta.datasets.calls) != 0 {
		t.Error("an unauthorised PUT reached the Dataset API")
	}
}

func TestPutCreateReplaceGet(t *testing.T) {
	ta := newTestAPI(t, apiOpts{})
	status, body := ta.do("PUT", "/v1/businesses/111", waBody)
	if status != http.StatusCreated {
		t.Fatalf("PUT = %d %s; want 201", status, body)
	}
	got := decode[businessJSON](t, body)
	if !got.AccessTokenSet || got.AccessTokenLast4 != "1111" || !got.AppSecretSet || got.DatasetID != "9001" ||
		got.Channel != "whatsapp" || !got.Enabled || got.TestEventCode != "TEST42" || got.PartnerAgent != "acme" ||
		fmt.Sprint(got.PhoneNumberIDs) != "[5001]" || got.CreatedAt.IsZero() {
		t.Fatalf("PUT answer = %+v", got)
	}
	replace := strings.Replace(strings.Replace(waBody, testToken, testToken2, 1), `"partner_agent": "acme"`, `"enabled": false, "require_referral": true`, 1)
	status, body = ta.do("PUT", "/v1/businesses/111", replace)
	if status != http.StatusOK {
		t.Fatalf("second PUT = %d %s; want 200", status, body)
	}
	status, body = ta.do("GET", "/v1/businesses/111", "")
	got = decode[businessJSON](t, body)
	if status != http.StatusOK || got.AccessTokenLast4 != "2222" || got.Enabled || got.RequireReferral == nil || !*got.RequireReferral || got.PartnerAgent != "" {
		t.Fatalf("GET after replace = %d %s", status, body)
	}
	if got.Health == nil || got.Health.Available || !strings.Contains(got.Health.Reason, "no health source") {
		t.Errorf("health without a source = %+v; want unavailable with a reason", got.Health)
	}
	b, err := ta.store.Get(t.Context(), "111")
	if err != nil || b.AccessToken.Reveal() != testToken2 || b.AppSecret.Reveal() != testAppSecret {
		t.Fatalf("stored record: %v; want the second token and the app secret", err)
	}
	if len(ta.datasets.calls) != 0 {
		t.Errorf("Dataset API called with dataset_id given: %d calls", len(ta.datasets.calls))
	}
	logged := false
	for _, e := range ta.logs.FilterMessage("business stored").All() {
		logged = logged || e.ContextMap()["business_id"] == "111"
	}
	if !logged {
		t.Error(`no "business stored" log line for 111`)
	}
}

func TestPutRejects(t *testing.T) {
	ta := newTestAPI(t, apiOpts{})
	ta.do("PUT", "/v1/businesses/222", `{"channel": "whatsapp", "dataset_id": "1", "phone_number_ids": ["5001"]}`)
	tests := []struct {
		name, path, body string
		status           int
		field, text      string
	}{
		{"unknown field", "/v1/businesses/111", `{"channel": "whatsapp", "datasetid": "1"}`, 400, "datasetid", `unknown field "datasetid": did you mean "dataset_id"?`},
		{"other unknown field", "/v1/businesses/111", `{"channel": "whatsapp", "colour": "red"}`, 400, "colour", "known fields: channel, dataset_id"},
		{"token by env name", "/v1/businesses/111", `{"channel": "whatsapp", "access_token_env": "X"}`, 400, "access_token_env", `send it as "access_token"`},
		{"wrong type", "/v1/businesses/111", `{"channel": "whatsapp", "phone_number_ids": "5001"}`, 400, "phone_number_ids", "must be a list of strings"},
		{"token not a string", "/v1/businesses/111", `{"channel": "whatsapp", "access_token": 5}`, 400, "access_token", "must be a string"},
		{"bad channel", "/v1/businesses/111", `{"channel": "sms", "dataset_id": "1"}`, 400, "channel", "whatsapp, messenger or instagram"},
		{"no channel", "/v1/businesses/111", `{"dataset_id": "1"}`, 400, "channel", "channel"},
		{"bad phone id", "/v1/businesses/111", `{"channel": "whatsapp", "dataset_id": "1", "phone_number_ids": ["+1 555"]}`, 400, "phone_number_ids", "digits only"},
		{"token with a newline", "/v1/businesses/111", `{"channel": "whatsapp", "dataset_id": "1", "access_token": "` + testToken + `\n"}`, 400, "access_token", "stray newline"},
		{"bad business id", "/v1/businesses/page-1", `{"channel": "whatsapp", "dataset_id": "1"}`, 400, "business_id", "digits only"},
		{"not JSON", "/v1/businesses/111", `{"channel": `, 400, "", "not valid JSON"},
		{"empty", "/v1/businesses/111", ``, 400, "", "body is empty"},
		{"array", "/v1/businesses/111", `[]`, 400, "", "JSON object"},
		{"two objects", "/v1/businesses/111", `{"channel": "whatsapp", "dataset_id": "1"} {}`, 400, "", "after the JSON object"},
		{"too large", "/v1/businesses/111", `{"channel": "` + strings.Repeat("w", MaxBodyBytes) + `"}`, 413, "", "larger than"},
		{"unknown attribution", "/v1/businesses/111", `{"channel": "whatsapp", "dataset_id": "1", "attribution": "linear"}`, 400, "attribution", "must be last_touch or first_touch"},
		{"attribution not a string", "/v1/businesses/111", `{"channel": "whatsapp", "dataset_id": "1", "attribution": true}`, 400, "attribution", "must be a string"},
		{"phone taken", "/v1/businesses/111", `{"channel": "whatsapp", "dataset_id": "1", "phone_number_ids": ["5001"]}`, 409, "phone_number_ids", "already belongs to business 222"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := ta.do("PUT", tt.path, tt.body)
			wantError(t, status, body, tt.status, tt.field, tt.text)
		})
	}
	if status, _ := ta.do("GET", "/v1/businesses/111", ""); status != http.StatusNotFound {
		t.Errorf("a rejected PUT stored something: GET = %d", status)
	}
	if len(ta.datasets.calls) != 0 {
		t.Errorf("a rejected PUT called the Dataset API %d times", len(ta.datasets.calls))
	}
}

func TestPutResolvesDataset(t *testing.T) {
	ta := newTestAPI(t, apiOpts{})
	status, body := ta.do("PUT", "/v1/businesses/111", `{"channel": "messenger", "access_token": "`+testToken+`"}`)
	if got := decode[businessJSON](t, body); status != http.StatusCreated || got.DatasetID != "7770001" {
		t.Fatalf("PUT without dataset_id = %d %s; want 201 with the resolved dataset", status, body)
	}
	status, body = ta.do("PUT", "/v1/businesses/222", `{"channel": "instagram"}`)
	if got := decode[businessJSON](t, body); status != http.StatusCreated || got.DatasetID != "7770001" || got.AccessTokenSet {
		t.Fatalf("PUT without a token = %d %s; want 201, resolved with the default token", status, body)
	}
	want := "[111 " + testToken + " 222 " + defaultToken + "]"
	if fmt.Sprint(ta.datasets.calls) != want {
		t.Fatalf("Dataset API calls = %v; want the business's own token, then the default", ta.datasets.calls)
	}
}

func TestPutDatasetAPIError(t *testing.T) {
	ta := newTestAPI(t, apiOpts{})
	ta.datasets.err = &capi.APIError{Op: "get dataset", Status: 400, Code: 190, Subcode: 463, Type: "OAuthException",
		Message: "Error validating access token: Session has expired (token " + testToken + ")", FBTraceID: "AbCdEf"}
	status, body := ta.do("PUT", "/v1/businesses/111", `{"channel": "whatsapp", "access_token": "`+testToken+`"}`)
	wantError(t, status, body, http.StatusBadGateway, "dataset_id", "Meta code 190, setup_fault")
	e := decode[errJSON](t, body)
	if e.Meta == nil || e.Meta.Code != 190 || e.Meta.Subcode != 463 || e.Meta.Class != "setup_fault" || e.Meta.Type != "OAuthException" ||
		!strings.Contains(e.Meta.Message, "Session has expired (token [redacted])") || e.Meta.FBTraceID != "AbCdEf" {
		t.Fatalf("meta = %+v; want Meta's code, subcode, class and message without the token", e.Meta)
	}
	if status, _ := ta.do("GET", "/v1/businesses/111", ""); status != http.StatusNotFound {
		t.Errorf("a business whose dataset failed was stored: GET = %d", status)
	}

	ta.datasets.err = &capi.TransportError{Op: "get dataset", Err: fmt.Errorf("connection refused")}
	status, body = ta.do("PUT", "/v1/businesses/111", `{"channel": "whatsapp"}`)
	wantError(t, status, body, http.StatusBadGateway, "dataset_id", "could not be reached")
}

func TestPutWithoutKey(t *testing.T) {
	ta := newTestAPI(t, apiOpts{noKey: true})
	status, body := ta.do("PUT", "/v1/businesses/111", waBody)
	wantError(t, status, body, http.StatusServiceUnavailable, "", "set REGISTRY_KEY")
	status, body = ta.do("PUT", "/v1/businesses/111", `{"channel": "messenger", "dataset_id": "1"}`)
	if status != http.StatusCreated {
		t.Fatalf("PUT without secrets and without a key = %d %s; want 201", status, body)
	}
}

func TestGetHealth(t *testing.T) {
	since := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	h := Health{Paused: &Pause{Since: since, Code: 190, Subcode: 463, Class: "setup_fault"}, LastAccepted: &since,
		Sent24h: 42, DeadLettered24h: map[string]int64{"no_context": 3}}
	var aliases []string
	ta := newTestAPI(t, apiOpts{health: fakeHealth{h, &aliases}})
	ta.do("PUT", "/v1/businesses/111", waBody)
	_, body := ta.do("GET", "/v1/businesses/111", "")
	if len(aliases) != 1 || aliases[0] != "5001" {
		t.Errorf("health asked with aliases %v; want the WABA's phone_number_ids [5001]", aliases)
	}
	got := decode[businessJSON](t, body)
	if got.Health == nil || !got.Health.Available || got.Health.Health == nil || got.Health.Paused == nil ||
		got.Health.Paused.Code != 190 || got.Health.Paused.Class != "setup_fault" || got.Health.Sent24h != 42 ||
		got.Health.DeadLettered24h["no_context"] != 3 || !got.Health.LastAccepted.Equal(since) {
		t.Fatalf("health = %s; want the source's", body)
	}
	if !strings.Contains(body, `"paused":{"since":"2026-12-01T09:00:00Z","code":190,"subcode":463,"class":"setup_fault"}`) {
		t.Errorf("health JSON = %s", body)
	}
}

func TestListPages(t *testing.T) {
	ta := newTestAPI(t, apiOpts{})
	for i := range 5 {
		ta.do("PUT", fmt.Sprintf("/v1/businesses/10%d", i), `{"channel": "messenger", "dataset_id": "1", "access_token": "`+testToken+`"}`)
	}
	var ids []string
	cursor := ""
	for range 10 {
		status, body := ta.do("GET", "/v1/businesses?limit=2&cursor="+cursor, "")
		if status != http.StatusOK {
			t.Fatalf("list = %d %s", status, body)
		}
		p := decode[listJSON](t, body)
		for _, b := range p.Businesses {
			if !b.AccessTokenSet || b.Health != nil {
				t.Errorf("listed record %+v; want secrets as set and no health", b)
			}
			ids = append(ids, b.BusinessID)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if fmt.Sprint(ids) != "[100 101 102 103 104]" {
		t.Fatalf("listed %v; want all five in order", ids)
	}
	for _, q := range []string{"?limit=0", "?limit=x", fmt.Sprintf("?limit=%d", 1000)} {
		status, body := ta.do("GET", "/v1/businesses"+q, "")
		wantError(t, status, body, http.StatusBadRequest, "limit", "limit")
	}
	status, body := ta.do("GET", "/v1/businesses?cursor=zz", "")
	wantError(t, status, body, http.StatusBadRequest, "cursor", "next_cursor")
}

// TestListUnreadableRecord: a record whose access token is sealed with a
// key REGISTRY_KEY no longer lists is listed as unreadable, with its key
// id and what to do, between the readable ones; before, it made the whole
// list (and the console's) answer 500.
func TestListUnreadableRecord(t *testing.T) {
	old := newTestAPI(t, apiOpts{})
	old.do("PUT", "/v1/businesses/101", `{"channel": "messenger", "dataset_id": "1"}`)
	old.do("PUT", "/v1/businesses/102", `{"channel": "messenger", "dataset_id": "1", "access_token": "`+testToken+`"}`)
	old.do("PUT", "/v1/businesses/103", `{"channel": "messenger", "dataset_id": "1"}`)
	other := "k2:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	ta := newTestAPI(t, apiOpts{rdb: old.rdb, key: other})
	status, body := ta.do("GET", "/v1/businesses", "")
	if status != http.StatusOK {
		t.Fatalf("list with an unreadable record = %d %s; want 200", status, body)
	}
	p := decode[listJSON](t, body)
	var got []string
	for _, b := range p.Businesses {
		got = append(got, fmt.Sprintf("%s:%v:%s", b.BusinessID, b.Unreadable, b.KeyID))
	}
	if fmt.Sprint(got) != "[101:false: 102:true:k1 103:false:]" {
		t.Fatalf("listed %v; want 102 marked unreadable (key k1) between 101 and 103", got)
	}
	if e := p.Businesses[1].Error; !strings.Contains(e, "REGISTRY_KEY") {
		t.Errorf("unreadable record's error %q; want it to say to check REGISTRY_KEY", e)
	}
}

func TestDelete(t *testing.T) {
	ta := newTestAPI(t, apiOpts{})
	ta.do("PUT", "/v1/businesses/111", waBody)
	if status, body := ta.do("DELETE", "/v1/businesses/111", ""); status != http.StatusNoContent || body != "" {
		t.Fatalf("DELETE = %d %q; want 204", status, body)
	}
	if status, _ := ta.do("GET", "/v1/businesses/111", ""); status != http.StatusNotFound {
		t.Fatalf("GET after DELETE = %d; want 404", status)
	}
}

func TestUnknownBusiness(t *testing.T) {
	ta := newTestAPI(t, apiOpts{})
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/businesses/404404"}, {"DELETE", "/v1/businesses/404404"}, {"POST", "/v1/businesses/404404/resume"},
	} {
		status, body := ta.do(r.method, r.path, "")
		wantError(t, status, body, http.StatusNotFound, "", "no business 404404 in the registry: create it with PUT /v1/businesses/404404")
	}
	if len(ta.resumer.calls) != 0 {
		t.Error("resume of an unknown business reached the Resumer")
	}
}

func TestResume(t *testing.T) {
	ta := newTestAPI(t, apiOpts{})
	ta.do("PUT", "/v1/businesses/111", waBody)
	if status, body := ta.do("POST", "/v1/businesses/111/resume", ""); status != http.StatusNoContent {
		t.Fatalf("resume of a business that is not paused = %d %s; want 204", status, body)
	}
	ta.resumer.res = ResumeResult{WasPaused: true, Parked: 7}
	status, body := ta.do("POST", "/v1/businesses/111/resume", "")
	if got := decode[resumeJSON](t, body); status != http.StatusAccepted || !got.WasPaused || got.Parked != 7 {
		t.Fatalf("resume of a paused business = %d %s; want 202 with 7 parked", status, body)
	}
	if fmt.Sprint(ta.resumer.calls) != "[111 111]" {
		t.Fatalf("Resumer calls = %v", ta.resumer.calls)
	}

	off := newTestAPI(t, apiOpts{noResume: true})
	off.do("PUT", "/v1/businesses/111", waBody)
	status, body = off.do("POST", "/v1/businesses/111/resume", "")
	wantError(t, status, body, http.StatusServiceUnavailable, "", "no sender is connected")
}

// A business's own token is proven with its own app secret when the
// dataset is resolved (Meta refuses a proof keyed with another app's).
func TestPutResolvesDatasetWithBusinessSecret(t *testing.T) {
	ta := newTestAPI(t, apiOpts{})
	const secret = "business-app-secret-0000000001"
	status, body := ta.do("PUT", "/v1/businesses/111", `{"channel": "messenger", "access_token": "`+testToken+`", "app_secret": "`+secret+`"}`)
	if status != http.StatusCreated {
		t.Fatalf("PUT = %d %s", status, body)
	}
	if fmt.Sprint(ta.datasets.secrets) != "["+secret+"]" {
		t.Errorf("Dataset API asked with app secrets %d times; want the business's once", len(ta.datasets.secrets))
	}
}

// TestPutAttribution: the attribution policy is stored and shown, last_touch
// when the PUT leaves it out.
func TestPutAttribution(t *testing.T) {
	ta := newTestAPI(t, apiOpts{})
	for _, tt := range []struct{ body, want string }{
		{`{"channel": "whatsapp", "dataset_id": "1", "attribution": "first_touch"}`, "first_touch"},
		{`{"channel": "whatsapp", "dataset_id": "1", "attribution": "last_touch"}`, "last_touch"},
		{`{"channel": "whatsapp", "dataset_id": "1"}`, "last_touch"},
	} {
		if status, body := ta.do("PUT", "/v1/businesses/333", tt.body); status >= 300 {
			t.Fatalf("PUT %s = %d %s", tt.body, status, body)
		}
		_, body := ta.do("GET", "/v1/businesses/333", "")
		if got := decode[businessJSON](t, body); got.Attribution != tt.want {
			t.Errorf("after PUT %s: attribution %q; want %q", tt.body, got.Attribution, tt.want)
		}
		b, err := ta.store.Get(t.Context(), "333")
		if err != nil || b.Attribution.Or() != registry.Attribution(tt.want) {
			t.Errorf("stored %q, %v; want %q", b.Attribution, err, tt.want)
		}
	}
}

// With REDIS_MIN_REPLICAS a change counts only once the replicas have it:
// a replica that cannot confirm makes PUT answer 503 and say why.
func TestPutNotReplicated(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.StartReplica(t, primary)
	rdb := redis.NewClient(&redis.Options{Addr: primary.Addr, ReadTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	if err := replicas.Install(rdb, replicas.Config{Min: 1, Timeout: 100 * time.Millisecond}, nil); err != nil {
		t.Fatal(err)
	}
	ta := newTestAPI(t, apiOpts{rdb: rdb})
	if status, body := ta.do("PUT", "/v1/businesses/111", waBody); status != http.StatusCreated {
		t.Fatalf("PUT with the replica up = %d %s; want 201", status, body)
	}
	replica.Pause()
	t.Cleanup(replica.Resume)
	status, body := ta.do("PUT", "/v1/businesses/112", waBody)
	wantError(t, status, body, http.StatusServiceUnavailable, "", "not confirmed by REDIS_MIN_REPLICAS Redis replicas")
}
