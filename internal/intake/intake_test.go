package intake

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/conversion"
)

// The intake keeps its own copy of the contract's JetStream names, since it
// must not depend on the sender; this keeps the two equal.
func TestStreamNamesMatchSender(t *testing.T) {
	if streamConversions != sender.StreamConversions || subjectPrefix+">" != sender.SubjectConversions {
		t.Errorf("intake publishes to %s%s in %s; the sender reads %s in %s",
			subjectPrefix, "<channel>", streamConversions, sender.SubjectConversions, sender.StreamConversions)
	}
}

// 1,000 conversions in one NDJSON body are each stored once, as sent; the
// same body again is 1,000 duplicates and stores nothing.
func TestNDJSONThousandStoredOnce(t *testing.T) {
	e := newEnv(t, Config{}, false)
	items := conversions("nd", MaxItems)
	body := ndjson(items)

	r := e.post(body, "application/x-ndjson")
	if r.Status != http.StatusAccepted || r.Accepted != MaxItems || r.Duplicates != 0 || len(r.Invalid) != 0 {
		t.Fatalf("first POST = %d %s; want 202 with 1000 accepted", r.Status, r.Raw)
	}
	e.storedOnce(items)

	r = e.post(body, "application/x-ndjson; charset=utf-8")
	if r.Status != http.StatusAccepted || r.Accepted != 0 || r.Duplicates != MaxItems {
		t.Fatalf("second POST = %d %s; want 202 with 1000 duplicates", r.Status, r.Raw)
	}
	e.storedOnce(items)

	if got := testutil.ToFloat64(e.h.m.conversions.WithLabelValues(resultAccepted)); got != MaxItems {
		t.Errorf("intake_conversions_total{result=accepted} = %v; want 1000", got)
	}
	if got := testutil.ToFloat64(e.h.m.conversions.WithLabelValues(resultDuplicate)); got != MaxItems {
		t.Errorf("intake_conversions_total{result=duplicate} = %v; want 1000", got)
	}
	if got := testutil.ToFloat64(e.h.m.requests.WithLabelValues("202")); got != 2 {
		t.Errorf(`intake_requests_total{code="202"} = %v; want 2`, got)
	}
}

// A body with 3 bad items of 10 stores the 7 and names the 3 with their
// index, event_id and the contract's reason, in both body forms.
func TestThreeBadOfTen(t *testing.T) {
	items := conversions("mix", 10)
	bad := map[int][]byte{
		2: []byte(`{"event_id":"mix-0002","event_name":"Lead","channel":"whatsapp","business_id":"1","user_id":"16315550002"}`),
		5: []byte(`{"event_id":"mix-0005","event_name":"Purchase","channel":"messenger","business_id":"1","user_id":"16315550005"}`),
		9: []byte(`{"event_name":"LeadSubmitted","channel":"instagram","business_id":"1","user_id":"16315550009"}`),
	}
	var good []testItem
	for i := range items {
		if b, ok := bad[i]; ok {
			items[i].json = b
			continue
		}
		good = append(good, items[i])
	}
	var want []Invalid
	for _, i := range []int{2, 5, 9} {
		c, err := conversion.Parse(bad[i])
		if err == nil {
			t.Fatalf("item %d is valid", i)
		}
		want = append(want, Invalid{Index: i, EventID: c.EventID, Reason: err.Error()})
	}
	for _, form := range []struct {
		name, contentType string
		body              []byte
	}{
		{"ndjson", "application/x-ndjson", ndjson(items)},
		{"array", "application/json", array(items)},
	} {
		t.Run(form.name, func(t *testing.T) {
			e := newEnv(t, Config{}, false)
			r := e.post(form.body, form.contentType)
			if r.Status != http.StatusAccepted || r.Accepted != 7 || r.Duplicates != 0 {
				t.Fatalf("POST = %d %s; want 202 with 7 accepted", r.Status, r.Raw)
			}
			if diff := cmp.Diff(want, r.Invalid); diff != "" {
				t.Errorf("invalid (-want +got):\n%s", diff)
			}
			for _, inv := range r.Invalid {
				if strings.Contains(inv.Reason, "1631555") {
					t.Errorf("reason %q holds a user_id", inv.Reason)
				}
			}
			e.storedOnce(good)
			if got := testutil.ToFloat64(e.h.m.conversions.WithLabelValues(resultInvalid)); got != 3 {
				t.Errorf("intake_conversions_total{result=invalid} = %v; want 3", got)
			}
		})
	}
}

// One object, an array, and one object whatever the Content-Type (curl -d
// sends a form type) are all taken; the same event twice in one body is one
// accepted and one duplicate.
func TestBodyForms(t *testing.T) {
	e := newEnv(t, Config{}, false)
	one := conversions("one", 1)
	arr := conversions("arr", 3)
	form := conversions("form", 1)
	twice := conversions("twice", 1)
	tests := []struct {
		name, contentType string
		body              []byte
		accepted, dups    int
	}{
		{"object", "application/json", one[0].json, 1, 0},
		{"array", "application/json", array(arr), 3, 0},
		{"object as form type", "application/x-www-form-urlencoded", form[0].json, 1, 0},
		{"same event twice", "application/x-ndjson", ndjson(append(twice, twice...)), 1, 1},
		{"object again", "", one[0].json, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(tt.body, tt.contentType)
			if r.Status != http.StatusAccepted || r.Accepted != tt.accepted || r.Duplicates != tt.dups {
				t.Errorf("POST = %d %s; want 202 with %d accepted, %d duplicates", r.Status, r.Raw, tt.accepted, tt.dups)
			}
			if r.Invalid == nil || len(r.Invalid) != 0 {
				t.Errorf("invalid = %#v; want []", r.Invalid)
			}
		})
	}
	e.storedOnce(append(append(append(one, arr...), form...), twice...))
}

func TestUnauthorized(t *testing.T) {
	e := newEnv(t, Config{}, false)
	body := conversions("auth", 1)[0].json
	tests := []struct {
		name, auth string
		want       int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer intake-token-wrong-000000", http.StatusUnauthorized},
		{"token prefix", "Bearer " + testToken[:len(testToken)-1], http.StatusUnauthorized},
		{"basic scheme", "Basic " + testToken, http.StatusUnauthorized},
		{"no scheme", testToken, http.StatusUnauthorized},
		{"first token", "Bearer " + testToken, http.StatusAccepted},
		{"second token of the list", "bearer " + otherToken, http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.postAuth(body, "application/json", tt.auth)
			if r.Status != tt.want {
				t.Errorf("POST with %q = %d %s; want %d", tt.name, r.Status, r.Raw, tt.want)
			}
			if tt.want == http.StatusUnauthorized && r.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
	if got := testutil.ToFloat64(e.h.m.requests.WithLabelValues("401")); got != 5 {
		t.Errorf(`intake_requests_total{code="401"} = %v; want 5`, got)
	}
}

// Without INTAKE_TOKEN the route answers 404 and needs no NATS.
func TestDisabled(t *testing.T) {
	e := newEnv(t, Config{Tokens: []string{}}, true)
	r := e.post(conversions("off", 1)[0].json, "application/json")
	if r.Status != http.StatusNotFound || !strings.Contains(r.Error, "INTAKE_TOKEN") {
		t.Errorf("POST = %d %s; want 404 naming INTAKE_TOKEN", r.Status, r.Raw)
	}
	if _, err := New(Config{}, Deps{Log: e.h.log}); err != nil {
		t.Errorf("New without tokens and NATS: %v", err)
	}
	if _, err := New(Config{Tokens: []string{testToken}}, Deps{Log: e.h.log}); err == nil {
		t.Error("New with a token and no NATS succeeded")
	}
}

func TestTooLarge(t *testing.T) {
	e := newEnv(t, Config{BodyLimit: 64 << 10}, false)
	many := conversions("many", MaxItems+1)
	for i := range many {
		many[i].json = []byte(`{}`) // small enough for the byte limit
	}
	big := conversions("big", 1)[0]
	big.json = append(big.json[:len(big.json)-1], []byte(`,"pad":"`+strings.Repeat("x", 64<<10)+`"}`)...)
	tests := []struct {
		name, contentType string
		body              []byte
		want              string
	}{
		{"1001 lines", "application/x-ndjson", ndjson(many), "more than 1000 conversions"},
		{"1001 elements", "application/json", array(many), "more than 1000 conversions"},
		{"over the byte limit", "application/json", big.json, "INTAKE_BODY_LIMIT (65536 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(tt.body, tt.contentType)
			if r.Status != http.StatusRequestEntityTooLarge || !strings.Contains(r.Error, tt.want) {
				t.Errorf("POST = %d %s; want 413 saying %q", r.Status, r.Raw, tt.want)
			}
		})
	}
	// A client that sends no Content-Length (chunked) is cut at the limit.
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+Path, struct{ *bytes.Reader }{bytes.NewReader(big.json)})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if r := e.do(req); r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked POST over the limit = %d %s; want 413", r.Status, r.Raw)
	}
	if n := len(e.stored()); n != 0 {
		t.Errorf("stream holds %d messages after 413s; want 0", n)
	}
}

func TestBadRequest(t *testing.T) {
	e := newEnv(t, Config{}, false)
	bad := `{"event_id":"bad-1","event_name":"Lead","channel":"whatsapp","business_id":"1","user_id":"16315550001"}`
	tests := []struct {
		name, contentType, body string
		want                    string
		invalid                 int
	}{
		{"not JSON", "application/json", `{"event_id": "x",`, "body is not JSON: syntax error at byte", 0},
		{"NDJSON sent as JSON", "application/json", `{"a":1}` + "\n" + `{"b":2}`, "application/x-ndjson", 0},
		{"NaN", "application/json", `{"value": NaN}`, "body is not JSON", 0},
		{"empty", "application/json", "  \n", "no conversion", 0},
		{"empty array", "application/json", "[]", "no conversion", 0},
		{"empty NDJSON", "application/x-ndjson", "\n\n", "no conversion", 0},
		{"a string", "application/json", `"Purchase"`, "must be a JSON object", 0},
		{"all invalid object", "application/json", bad, "no valid conversion", 1},
		{"all invalid array", "application/json", "[" + bad + `,7]`, "no valid conversion", 2},
		{"NDJSON lines not JSON", "application/x-ndjson", "nope\n{\n", "no valid conversion", 2},
		// Valid JSON, but 1e400 overflows a float64: invalid, never posted.
		{"value 1e400", "application/json", `{"event_id":"big-1","event_name":"Purchase","channel":"messenger","business_id":"1","user_id":"7","custom_data":{"currency":"USD","value":1e400}}`,
			"no valid conversion", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post([]byte(tt.body), tt.contentType)
			if r.Status != http.StatusBadRequest || !strings.Contains(r.Error, tt.want) || len(r.Invalid) != tt.invalid {
				t.Errorf("POST = %d %s; want 400 saying %q with %d invalid", r.Status, r.Raw, tt.want, tt.invalid)
			}
			if tt.name == "value 1e400" && (len(r.Invalid) != 1 || !strings.Contains(r.Invalid[0].Reason, "custom_data.value: number too large")) {
				t.Errorf("1e400's reason = %+v; want custom_data.value: number too large", r.Invalid)
			}
			if strings.Contains(r.Raw, "16315550001") {
				t.Errorf("answer %s holds a user_id", r.Raw)
			}
		})
	}
	if n := len(e.stored()); n != 0 {
		t.Errorf("stream holds %d messages after 400s; want 0", n)
	}
}

// On the admin listener, wrong tokens are limited per address: after
// admin.GuardMaxFailures of them, the intake answers its own 429 with
// Retry-After (counted), the right token too, until the window ends.
func TestWrongTokensLimited(t *testing.T) {
	e := newEnv(t, Config{}, false)
	adm := admin.New(admin.Config{Token: "adm-token"}, zap.NewNop(), prometheus.NewRegistry())
	adm.Echo().POST(Path, echo.WrapHandler(e.h))
	srv := httptest.NewServer(adm.Handler())
	t.Cleanup(srv.Close)
	e.srv = srv
	body := ndjson(conversions("guard", 1))
	for i := range admin.GuardMaxFailures {
		if r := e.postAuth(body, "application/x-ndjson", "Bearer guess-"+strconv.Itoa(i)); r.Status != http.StatusUnauthorized {
			t.Fatalf("wrong token = %d; want 401", r.Status)
		}
	}
	r := e.postAuth(body, "application/x-ndjson", "Bearer "+testToken)
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Raw, "too many wrong tokens") {
		t.Fatalf("right token after %d wrong ones = %d %s (Retry-After %q); want 429",
			admin.GuardMaxFailures, r.Status, r.Raw, r.Header.Get("Retry-After"))
	}
	if n := testutil.ToFloat64(e.h.m.requests.WithLabelValues("429")); n != 1 {
		t.Fatalf("intake_requests_total{status=\"429\"} = %v; want 1", n)
	}
	if got := e.stored(); len(got) != 0 {
		t.Fatalf("%d stored while refused", len(got))
	}
}
