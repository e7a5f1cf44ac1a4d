package capi

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestClass(t *testing.T) {
	tests := []struct {
		name string
		err  APIError
		want Class
	}{
		{"server error no body", APIError{Status: 500}, Retryable},
		{"bad gateway page", APIError{Status: 502}, Retryable},
		{"unknown", APIError{Status: 500, Code: 1}, Retryable},
		{"service", APIError{Status: 400, Code: 2}, Retryable},
		{"transient flag", APIError{Status: 400, Code: 100, Transient: true}, Retryable},
		{"proxy 404 page", APIError{Status: 404}, Retryable},
		{"proxy 413", APIError{Status: 413}, Rejected},
		{"app too many calls", APIError{Status: 400, Code: 4}, Throttled},
		{"user too many calls", APIError{Status: 400, Code: 17, Subcode: 2446079}, Throttled},
		{"page limit", APIError{Status: 400, Code: 32}, Throttled},
		{"application limit", APIError{Status: 400, Code: 341}, Throttled},
		{"policy block", APIError{Status: 400, Code: 368}, Blocked},
		{"custom rate limit", APIError{Status: 400, Code: 613, Subcode: 1996}, Throttled},
		{"buc ads insights", APIError{Status: 400, Code: 80000}, Throttled},
		{"buc pages", APIError{Status: 400, Code: 80001}, Throttled},
		{"buc ads management", APIError{Status: 400, Code: 80004, Subcode: 2446079}, Throttled},
		{"buc catalog batch", APIError{Status: 400, Code: 80014}, Throttled},
		{"throttled and transient", APIError{Status: 400, Code: 4, Transient: true}, Throttled},
		{"http 429", APIError{Status: 429}, Throttled},
		{"expired token", APIError{Status: 400, Code: 190, Type: "OAuthException"}, SetupFault},
		{"expired token 401", APIError{Status: 401, Code: 190, Subcode: 463}, SetupFault},
		{"invalid token subcode", APIError{Status: 400, Code: 190, Subcode: 467}, SetupFault},
		{"api session", APIError{Status: 400, Code: 102}, SetupFault},
		{"no token", APIError{Status: 400, Code: 104}, SetupFault},
		{"permission denied", APIError{Status: 403, Code: 10}, SetupFault},
		{"permission 200", APIError{Status: 403, Code: 200}, SetupFault},
		{"bad appsecret_proof", APIError{Status: 400, Code: 100, Message: "Invalid appsecret_proof provided in the API argument"}, SetupFault},
		{"invalid parameter", APIError{Status: 400, Code: 100, Subcode: 2804066}, Rejected},
		{"missing appsecret_proof", APIError{Status: 400, Code: 100, Message: "API calls from the server require an appsecret_proof argument"}, SetupFault},
		{"invalid event quoting the request URL", APIError{Status: 400, Code: 100, Message: "Invalid parameter (request /v24.0/1/events?access_token=[redacted]&appsecret_proof=[redacted])"}, Rejected},
		{"object missing", APIError{Status: 400, Code: 100, Subcode: 33}, SetupFault},
		{"capability", APIError{Status: 400, Code: 3}, SetupFault},
		{"permission 299", APIError{Status: 403, Code: 299}, SetupFault},
		{"permission 300 outside range", APIError{Status: 400, Code: 300}, Rejected},
		{"transient capability error still a setup fault", APIError{Status: 500, Code: 3, Transient: true}, SetupFault},
		{"duplicate post", APIError{Status: 400, Code: 506}, Rejected},
		{"deprecated ads api version", APIError{Status: 400, Code: 2635, Type: "OAuthException"}, SetupFault},
		{"deprecated version even if transient", APIError{Status: 500, Code: 2635, Transient: true}, SetupFault},
		{"code 80015 outside buc range", APIError{Status: 400, Code: 80015}, Rejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Class(); got != tt.want {
				t.Errorf("Class(%+v) = %v; want %v", tt.err, got, tt.want)
			}
		})
	}
}

// docs/graph-errors.md lists every rule of the table.
func TestErrorTableDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/graph-errors.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ErrorTable {
		if !strings.Contains(string(doc), "| "+r.Codes+" | "+r.Class.String()+" |") {
			t.Errorf("docs/graph-errors.md has no row | %s | %s |", r.Codes, r.Class)
		}
	}
}

func TestAPIErrorTextHasNoPersonalData(t *testing.T) {
	e := &APIError{Op: "post events", Status: 400, Code: 100, Type: "OAuthException",
		Message: "Invalid parameter: ig_sid 1234567890123456", UserTitle: "Invalid Parameter",
		UserMessage: "page_scoped_user_id 6789012345678901 is unknown", FBTraceID: "AbC"}
	got := e.Error()
	want := `capi: post events: graph api error: status 400, code 100, type OAuthException, title "Invalid Parameter", fbtrace_id AbC`
	if got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	for _, pii := range []string{"1234567890123456", "6789012345678901"} {
		if strings.Contains(got, pii) {
			t.Errorf("Error() = %q contains %q", got, pii)
		}
	}
}

func TestNewAPIErrorFallbacks(t *testing.T) {
	h := http.Header{}
	h.Set("X-Fb-Trace-Id", "hdrTrace")
	h.Set("Retry-After", "30")
	e := newAPIError("get dataset", 503, h, []byte("Service Unavailable"), "")
	if e.FBTraceID != "hdrTrace" || e.Code != 0 || e.Usage.RetryAfter != 30*time.Second {
		t.Errorf("newAPIError(non-JSON) = %+v; want trace id from header, code 0, retry 30s", e)
	}
	e = newAPIError("post events", 400, http.Header{}, []byte(`{"error":{"code":"190","error_subcode":"460","message":"x"}}`), "")
	if e.Code != 190 || e.Subcode != 460 {
		t.Errorf("newAPIError(quoted codes) = %+v; want code 190 subcode 460", e)
	}
	if e.Detail() != "x" {
		t.Errorf("Detail() = %q; want %q", e.Detail(), "x")
	}
}

// A Graph error that echoes the request never hands out the token or the
// proof: not in Error(), not in Detail() (stored in dead letters).
func TestAPIErrorScrubsEchoedSecrets(t *testing.T) {
	const token = "EAAGm0PX4ZCpsBAKZAZBtoken1234567890abcdefXYZ"
	proof := AppSecretProof(token, "s3cret")
	body := `{"error":{"code":100,"type":"OAuthException",` +
		`"message":"Invalid parameter in https://graph.facebook.com/v24.0/1/events?access_token=` + token + `&appsecret_proof=` + proof + `",` +
		`"error_user_title":"token ` + token + `",` +
		`"error_user_msg":"other EAAB0therT0kenFromAnotherApp99 and {\"access_token\": \"abc-def\"}, Bearer zzz.yyy, proof ` + proof + `"}}`
	e := newAPIError("post events", 400, http.Header{}, []byte(body), token)
	for _, text := range []string{e.Error(), e.Detail()} {
		for _, secret := range []string{token, proof, "EAAB0therT0kenFromAnotherApp99", "abc-def", "zzz.yyy", "s3cret"} {
			if strings.Contains(text, secret) {
				t.Errorf("error text %q holds %q", text, secret)
			}
		}
	}
	if !strings.Contains(e.Detail(), "Invalid parameter") || !strings.Contains(e.Detail(), "access_token="+Redacted) {
		t.Errorf("Detail() = %q; want Meta's message with the secrets masked", e.Detail())
	}
}

func TestScrubKeepsOrdinaryText(t *testing.T) {
	for _, s := range []string{
		"(#100) Invalid parameter: event_time is too far in the past",
		"(#3) Application does not have the capability to make this API call.",
		"EAA is a prefix", "tok",
	} {
		if got := Scrub(s, "tok"); got != s {
			t.Errorf("Scrub(%q) = %q; want it unchanged", s, got)
		}
	}
}
