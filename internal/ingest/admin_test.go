package ingest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

func TestAdminContexts(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	if rec := e.post(fixture(t, "whatsapp_cloud_text_with_ctwa_referral.json"), testAppSecret); rec.Code != http.StatusOK {
		t.Fatalf("POST fixture = %d", rec.Code)
	}
	if rec := e.post(fixture(t, "messenger_postback_with_referral.json"), testAppSecret); rec.Code != http.StatusOK {
		t.Fatalf("POST fixture = %d", rec.Code)
	}
	bearer := http.Header{"Authorization": {"Bearer " + testAdminToken}}
	const wa = "/v1/contexts/whatsapp/102290129340398/16315551234"
	tests := []struct {
		name   string
		path   string
		header http.Header
		want   int
	}{
		{"found by WABA id", wa, bearer, 200},
		{"found by phone_number_id", "/v1/contexts/whatsapp/106540352242922/16315551234", bearer, 200},
		{"found messenger", "/v1/contexts/messenger/109876543210987/6789012345678903", bearer, 200},
		{"lowercase scheme", wa, http.Header{"Authorization": {"bearer " + testAdminToken}}, 200},
		{"none stored", "/v1/contexts/whatsapp/102290129340398/19999999999", bearer, 404},
		{"wrong channel of a stored user", "/v1/contexts/instagram/102290129340398/16315551234", bearer, 404},
		{"unknown channel", "/v1/contexts/telegram/1/2", bearer, 400},
		{"no token", wa, nil, 401},
		{"wrong token", wa, http.Header{"Authorization": {"Bearer nope"}}, 401},
		{"token without scheme", wa, http.Header{"Authorization": {testAdminToken}}, 401},
		{"basic scheme", wa, http.Header{"Authorization": {"Basic " + testAdminToken}}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.admin(http.MethodGet, tt.path, tt.header)
			if rec.Code != tt.want {
				t.Fatalf("GET %s = %d (%s); want %d", tt.path, rec.Code, rec.Body, tt.want)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if tt.want != 200 {
				if body["error"] == "" {
					t.Errorf("error body %v lacks a reason", body)
				}
			}
		})
	}

	rec := e.admin(http.MethodGet, wa, bearer)
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	// When the click was recorded (now, by this test) and when the context
	// expires: CONTEXT_TTL after.
	rec0, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(got["recorded_at"]))
	exp, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(got["expires_at"]))
	if time.Since(rec0) > time.Minute || time.Since(rec0) < -time.Second || exp.Sub(rec0) != attribution.DefaultTTL {
		t.Errorf("recorded_at %v, expires_at %v; want now and CONTEXT_TTL (%v) later", got["recorded_at"], got["expires_at"], attribution.DefaultTTL)
	}
	delete(got, "recorded_at")
	delete(got, "expires_at")
	want := map[string]any{
		"channel":     "whatsapp",
		"business_id": "102290129340398",
		"user_id":     "16315551234",
		"ctwa_clid":   "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a",
		"ad_id":       "120212345678901234",
		"source_type": "ad",
		"source_url":  "https://fb.me/3cr4Wqqkv",
		"ref":         "",
		"first_seen":  "2025-11-23T12:13:20Z",
		"last_seen":   "2025-11-23T12:13:20Z",
		"no_click_id": false,
		"attribution": "last_touch",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET %s (-want +got):\n%s", wa, diff)
	}
}

// The admin lookup takes any id of a WhatsApp user: phone, BSUID, parent
// BSUID or a messages[].from that differs from wa_id.
func TestAdminContextsByAnyUserID(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	for _, f := range []string{"whatsapp_cloud_username_bsuid_only.json", "whatsapp_cloud_from_differs_from_wa_id.json"} {
		if rec := e.post(fixture(t, f), testAppSecret); rec.Code != http.StatusOK {
			t.Fatalf("POST %s = %d", f, rec.Code)
		}
	}
	bearer := http.Header{"Authorization": {"Bearer " + testAdminToken}}
	tests := []struct{ user, clid string }{
		{"US.13491208655302741918", "ARAbsuidOnlyClickId-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-01234567"},
		{"5511988881234", "ARAfromDiffersClick_0123456789abcdefghij"},
		{"551188881234", "ARAfromDiffersClick_0123456789abcdefghij"},
		{"BR.70012345678901234567", "ARAfromDiffersClick_0123456789abcdefghij"},
		{"BR.ENT.9081726354", "ARAfromDiffersClick_0123456789abcdefghij"},
	}
	for _, tt := range tests {
		for _, biz := range []string{"102290129340398", "106540352242922"} {
			path := "/v1/contexts/whatsapp/" + biz + "/" + tt.user
			rec := e.admin(http.MethodGet, path, bearer)
			var got contextJSON
			if err := json.Unmarshal(rec.Body.Bytes(), &got); rec.Code != http.StatusOK || err != nil {
				t.Fatalf("GET %s = %d (%v); want 200", path, rec.Code, err)
			}
			if got.UserID != tt.user || got.ClickID != tt.clid || got.BusinessID != "102290129340398" {
				t.Errorf("GET %s = user %q click %q business %q; want %q %q under the WABA id", path, got.UserID, got.ClickID, got.BusinessID, tt.user, tt.clid)
			}
		}
	}
}

func TestAdminDisabled(t *testing.T) {
	cfg := testConfig()
	cfg.AdminToken = ""
	e := newTestEnv(t, &cfg, nil)
	for _, h := range []http.Header{nil, {"Authorization": {"Bearer "}}, {"Authorization": {"Bearer " + testAdminToken}}} {
		rec := e.admin(http.MethodGet, "/v1/contexts/whatsapp/1/2", h)
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET with ADMIN_TOKEN unset, Authorization %q = %d; want 404", h.Get("Authorization"), rec.Code)
		}
		var body errorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if body.Error != admin.ErrDisabled.Message {
			t.Errorf("reason = %q; want %q", body.Error, admin.ErrDisabled.Message)
		}
	}
}

func TestAdminStoreDown(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	e.mr.Close()
	rec := e.admin(http.MethodGet, "/v1/contexts/whatsapp/1/2", bearer())
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("GET with the store down = %d; want 503", rec.Code)
	}
}

// The webhook listener faces the internet: the admin API and the metrics
// are not on it, token or not; they are on the admin listener.
func TestAdminAbsentOnWebhookListener(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	for _, path := range []string{"/metrics", "/v1/contexts/whatsapp/102290129340398/16315551234"} {
		if rec := e.do(http.MethodGet, path, nil, bearer()); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s on the webhook listener = %d; want 404", path, rec.Code)
		}
		if rec := e.admin(http.MethodGet, path, nil); rec.Code != http.StatusUnauthorized {
			t.Errorf("GET %s on the admin listener without the token = %d; want 401", path, rec.Code)
		}
	}
}
