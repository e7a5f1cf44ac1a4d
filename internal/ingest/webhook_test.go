package ingest

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

func TestHandshake(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	tests := []struct {
		name, mode, token, challenge string
		want                         int
	}{
		{"ok", "subscribe", testVerifyToken, "1158201444", http.StatusOK},
		{"wrong token", "subscribe", "nope", "1158201444", http.StatusForbidden},
		{"empty token", "subscribe", "", "1158201444", http.StatusForbidden},
		{"wrong mode", "unsubscribe", testVerifyToken, "1158201444", http.StatusForbidden},
		{"no mode", "", testVerifyToken, "1158201444", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"hub.mode": {tt.mode}, "hub.verify_token": {tt.token}, "hub.challenge": {tt.challenge}}
			rec := e.do(http.MethodGet, "/webhook?"+q.Encode(), nil, nil)
			if rec.Code != tt.want {
				t.Fatalf("GET /webhook?%s = %d; want %d", q.Encode(), rec.Code, tt.want)
			}
			if tt.want != http.StatusOK {
				return
			}
			if got := rec.Body.String(); got != tt.challenge {
				t.Errorf("body = %q; want the challenge %q", got, tt.challenge)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q; want text/plain", ct)
			}
		})
	}
}

func TestPostWebhookStatus(t *testing.T) {
	waClick := fixture(t, "whatsapp_cloud_text_with_ctwa_referral.json")
	tests := []struct {
		name     string
		body     []byte
		secret   string
		header   string // overrides the signature when set
		want     int
		ch       channel
		outcome  outcome
		stored   bool
		sigFails float64
	}{
		{"signed click", waClick, testAppSecret, "", 200, chanWhatsApp, outStored, true, 0},
		{"rotated secret", waClick, testOldSecret, "", 200, chanWhatsApp, outStored, true, 0},
		{"unsigned", waClick, "", "", 401, chanUnknown, outBadSignature, false, 1},
		{"wrong secret", waClick, "not-the-secret", "", 401, chanUnknown, outBadSignature, false, 1},
		{"garbage header", waClick, "", "sha256=zz", 401, chanUnknown, outBadSignature, false, 1},
		{"sha1 header", waClick, "", "sha1=0123", 401, chanUnknown, outBadSignature, false, 1},
		{"signed non-JSON", []byte("hello, not json"), testAppSecret, "", 400, chanUnknown, outBadJSON, false, 0},
		{"signed JSON array", []byte(`[1,2]`), testAppSecret, "", 400, chanUnknown, outBadJSON, false, 0},
		{"status update", fixture(t, "whatsapp_cloud_status_delivered.json"), testAppSecret, "", 200, chanWhatsApp, outIgnored, false, 0},
		{"plain messenger text", fixture(t, "messenger_plain_text.json"), testAppSecret, "", 200, chanMessenger, outIgnored, false, 0},
		{"unknown object", fixture(t, "edge_unknown_object.json"), testAppSecret, "", 200, chanUnknown, outIgnored, false, 0},
		{"no entries", fixture(t, "edge_empty_entry.json"), testAppSecret, "", 200, chanWhatsApp, outIgnored, false, 0},
		{"missing ids", fixture(t, "edge_missing_ids.json"), testAppSecret, "", 200, chanWhatsApp, outMalformed, false, 0},
		{"wrong types", fixture(t, "edge_wrong_types.json"), testAppSecret, "", 200, chanMessenger, outIgnored, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, nil, nil)
			h := http.Header{}
			if tt.secret != "" {
				h.Set(webhook.SignatureHeader, webhook.Sign(tt.body, []byte(tt.secret)))
			}
			if tt.header != "" {
				h.Set(webhook.SignatureHeader, tt.header)
			}
			rec := e.do(http.MethodPost, "/webhook", tt.body, h)
			if rec.Code != tt.want {
				t.Fatalf("POST /webhook = %d (%s); want %d", rec.Code, rec.Body, tt.want)
			}
			if got := e.webhooks(tt.ch, tt.outcome); got != 1 {
				t.Errorf("ingest_webhooks_total{channel=%s,outcome=%s} = %v; want 1", tt.ch, tt.outcome, got)
			}
			if got := count(t, e.srv.m.sigFailures); got != tt.sigFails {
				t.Errorf("ingest_signature_failures_total = %v; want %v", got, tt.sigFails)
			}
			if keys := e.mr.Keys(); (len(keys) > 0) != tt.stored {
				t.Errorf("redis keys after the request: %d; want stored=%v", len(keys), tt.stored)
			}
		})
	}
}

// The contract's fixtures store exactly the contexts expected.json lists,
// each findable by every id of its user (phone, BSUID, parent BSUID, from).
// Each fixture gets a store of its own: two of them name the same BSUID.
func TestPostWebhookStoresExpectedContexts(t *testing.T) {
	for _, ex := range expectations(t) {
		t.Run(strings.TrimSuffix(ex.File, ".json"), func(t *testing.T) {
			e := newTestEnv(t, nil, nil)
			body := fixture(t, ex.File)
			var rec *httptest.ResponseRecorder
			if strings.Contains(ex.File, "onprem") {
				rec = e.do(http.MethodPost, "/webhook/onprem", body, http.Header{onPremSecretHeader: {testOnPremSecret}})
			} else {
				rec = e.post(body, testAppSecret)
			}
			if rec.Code != http.StatusOK {
				t.Fatalf("POST %s = %d; want 200", ex.File, rec.Code)
			}
			for _, want := range ex.Touches {
				biz := want.BusinessID
				if biz == "" {
					biz = testOnPremWABA // On-Premises: the configured WABA id
				}
				for _, user := range []string{want.UserID, want.BSUID, want.Parent, want.From} {
					if user == "" {
						continue
					}
					got, err := e.store.Get(t.Context(), attribution.Key{Channel: want.Channel, BusinessID: biz, UserID: user})
					if err != nil {
						t.Fatalf("Get by one of the user's ids: %v", err)
					}
					if got.ClickID != want.ClickID || got.AdID != want.AdID || !got.LastSeen.Equal(time.Unix(want.Time, 0)) {
						t.Errorf("stored click %q ad %q at %v; want %q %q at %v", got.ClickID, got.AdID, got.LastSeen, want.ClickID, want.AdID, time.Unix(want.Time, 0))
					}
				}
			}
			var sum float64
			for c := range numChannels {
				sum += count(t, e.srv.m.touches[c])
			}
			if sum != float64(len(ex.Touches)) {
				t.Errorf("ingest_touches_total = %v; want %v", sum, len(ex.Touches))
			}
		})
	}
}

func TestPostWebhookTooLarge(t *testing.T) {
	cfg := testConfig()
	cfg.BodyLimit = 64
	e := newTestEnv(t, &cfg, nil)
	body := bytes.Repeat([]byte(" "), 65)
	h := http.Header{webhook.SignatureHeader: {webhook.Sign(body, []byte(testAppSecret))}}
	if rec := e.do(http.MethodPost, "/webhook", body, h); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("POST 65 bytes with a 64-byte limit = %d; want 413", rec.Code)
	}
	// Without Content-Length (chunked), the limit holds while reading.
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhook", io.MultiReader(bytes.NewReader(body)))
	req.ContentLength = -1
	req.Header = h
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked POST over the limit = %d; want 413", rec.Code)
	}
	if got := e.webhooks(chanUnknown, outTooLarge); got != 2 {
		t.Errorf("too_large count = %v; want 2", got)
	}
	// Exactly at the limit is fine (it is JSON, of a kind we do not use).
	ok := []byte(`{"object":"page","entry":[]}` + strings.Repeat(" ", 64-28))
	if rec := e.post(ok, testAppSecret); rec.Code != http.StatusOK {
		t.Errorf("POST of exactly the limit = %d; want 200", rec.Code)
	}
}

func TestPostWebhookStoreDown(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	e.mr.SetError("LOADING Redis is loading the dataset in memory")
	body := fixture(t, "messenger_message_with_ad_referral.json")
	if rec := e.post(body, testAppSecret); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("POST with the store failing = %d; want 503", rec.Code)
	}
	if got := e.webhooks(chanMessenger, outStoreError); got != 1 {
		t.Errorf("store_error count = %v; want 1", got)
	}
	// Deliveries that store nothing do not need the store.
	if rec := e.post(fixture(t, "messenger_plain_text.json"), testAppSecret); rec.Code != http.StatusOK {
		t.Errorf("POST of an ignored kind with the store failing = %d; want 200", rec.Code)
	}
	e.mr.SetError("")
	if rec := e.post(body, testAppSecret); rec.Code != http.StatusOK {
		t.Fatalf("POST after the store recovered = %d; want 200", rec.Code)
	}
}

// A touch the store cannot key does not cost the valid touches of the same
// delivery, and the delivery is not retried forever.
func TestPostWebhookInvalidTouchKeepsValidOnes(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	body := fixture(t, "whatsapp_cloud_batched_two_messages.json")
	// Give the second customer a click too, with a user id no key can hold.
	body = bytes.Replace(body, []byte(`"id": "wamid.A2",`), []byte(`"id": "wamid.A2", "referral": {"source_id": "1", "source_type": "ad", "ctwa_clid": "x"},`), 1)
	body = bytes.Replace(body, []byte(`"from": "447700900123"`), []byte(`"from": "4477:00900123"`), 1)
	p, err := webhook.Parse(body)
	if err != nil || len(p.Touches) != 2 {
		t.Fatalf("test body parses to %d touches (%v); want 2", len(p.Touches), err)
	}
	if rec := e.post(body, testAppSecret); rec.Code != http.StatusOK {
		t.Fatalf("POST = %d; want 200", rec.Code)
	}
	got, err := e.store.Get(t.Context(), attribution.Key{Channel: "whatsapp", BusinessID: "102290129340398", UserID: "5511988887777"})
	if err != nil || got.ClickID != "ARAsecondClickId_x8GJ2k1" {
		t.Errorf("valid touch: Get = %+v, %v; want it stored", got, err)
	}
	if got := count(t, e.srv.m.touches[chanWhatsApp]); got != 1 {
		t.Errorf("ingest_touches_total{whatsapp} = %v; want 1", got)
	}
}

func TestOnPrem(t *testing.T) {
	body := fixture(t, "whatsapp_onprem_text_with_referral.json")
	basic := func(user, pw string) http.Header {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth(user, pw)
		return r.Header
	}
	tests := []struct {
		name    string
		cfg     func(*Config)
		header  http.Header
		body    []byte
		want    int
		stored  bool
		outcome outcome
	}{
		{"header secret", nil, http.Header{onPremSecretHeader: {testOnPremSecret}}, body, 200, true, outStored},
		{"basic auth password", nil, basic("any", testOnPremSecret), body, 200, true, outStored},
		{"wrong header, right password", nil, func() http.Header {
			h := basic("any", testOnPremSecret)
			h.Set(onPremSecretHeader, "nope")
			return h
		}(), body, 200, true, outStored},
		{"no secret", nil, nil, body, 401, false, outUnauthorized},
		{"wrong header", nil, http.Header{onPremSecretHeader: {"nope"}}, body, 401, false, outUnauthorized},
		{"wrong password", nil, basic(testOnPremSecret, "nope"), body, 401, false, outUnauthorized},
		{"meta signature is not enough", nil, http.Header{webhook.SignatureHeader: {webhook.Sign(body, []byte(testAppSecret))}}, body, 401, false, outUnauthorized},
		{"non-JSON", nil, http.Header{onPremSecretHeader: {testOnPremSecret}}, []byte("nope"), 400, false, outBadJSON},
		{"disabled", func(c *Config) { c.OnPremSecret, c.OnPremWABAID = "", "" }, http.Header{onPremSecretHeader: {testOnPremSecret}}, body, 404, false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			e := newTestEnv(t, &cfg, nil)
			rec := e.do(http.MethodPost, "/webhook/onprem", tt.body, tt.header)
			if rec.Code != tt.want {
				t.Fatalf("POST /webhook/onprem = %d (%s); want %d", rec.Code, rec.Body, tt.want)
			}
			if tt.outcome >= 0 {
				if got := e.webhooks(chanOnPrem, tt.outcome); got != 1 {
					t.Errorf("ingest_webhooks_total{onprem,%s} = %v; want 1", tt.outcome, got)
				}
			}
			_, err := e.store.Get(t.Context(), attribution.Key{Channel: "whatsapp", BusinessID: testOnPremWABA, UserID: "16315551234"})
			if tt.stored != (err == nil) {
				t.Errorf("context under ONPREM_WABA_ID: err = %v; want stored=%v", err, tt.stored)
			}
			if !tt.stored && err != nil && !errors.Is(err, attribution.ErrNotFound) {
				t.Errorf("Get: %v", err)
			}
		})
	}
}

// The onprem path does not accept Meta-signed bodies in place of the shared
// secret, and /webhook does not accept the shared secret.
func TestOnPremSecretDoesNotOpenWebhook(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	body := fixture(t, "whatsapp_cloud_text_with_ctwa_referral.json")
	rec := e.do(http.MethodPost, "/webhook", body, http.Header{onPremSecretHeader: {testOnPremSecret}})
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("POST /webhook with only the on-prem secret = %d; want 401", rec.Code)
	}
}

// A click without a timestamp, or with one far in the future, is stored with
// the time it was received: 1970 would lose to any older click, and the future
// would win forever.
func TestPostWebhookClickTimes(t *testing.T) {
	waClick := fixture(t, "whatsapp_cloud_text_with_ctwa_referral.json")
	future := strconv.FormatInt(time.Now().Add(24*time.Hour).Unix(), 10)
	tests := []struct {
		name string
		body []byte
	}{
		{"no timestamp", bytes.Replace(waClick, []byte(`"timestamp": "1763900000",`), nil, 1)},
		{"not a number", bytes.Replace(waClick, []byte(`"1763900000"`), []byte(`"soon"`), 1)},
		{"a day ahead", bytes.Replace(waClick, []byte(`"1763900000"`), []byte(`"`+future+`"`), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Equal(tt.body, waClick) {
				t.Fatal("test body equals the fixture")
			}
			e := newTestEnv(t, nil, nil)
			before := time.Now().Truncate(time.Second)
			if rec := e.post(tt.body, testAppSecret); rec.Code != http.StatusOK {
				t.Fatalf("POST = %d; want 200", rec.Code)
			}
			after := time.Now()
			got, err := e.store.Get(t.Context(), attribution.Key{Channel: "whatsapp", BusinessID: "102290129340398", UserID: "16315551234"})
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.LastSeen.Before(before) || got.LastSeen.After(after) || !got.FirstSeen.Equal(got.LastSeen) {
				t.Errorf("stored first %v last %v; want the receive time, between %v and %v", got.FirstSeen, got.LastSeen, before, after)
			}
		})
	}
}
