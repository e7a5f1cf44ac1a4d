package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// Secrets of the ingest under test.
const (
	e2eAppSecret    = "e2e-app-secret-7f3a9c"
	e2eVerifyToken  = "e2e-verify-token-51be"
	e2eAdminToken   = "e2e-admin-token-c0d4"
	e2eOnPremSecret = "e2e-onprem-secret-88aa"
	e2eOnPremWABA   = "102290129340398"
)

// ingestClient talks to a running ingest over HTTP: base is the webhook
// listener, admin the admin listener.
type ingestClient struct {
	t           *testing.T
	base, admin string
}

func (c ingestClient) do(method, path string, body []byte, header http.Header) (int, []byte) {
	c.t.Helper()
	return c.at(c.base, method, path, body, header)
}

// adm sends a request to the admin listener.
func (c ingestClient) adm(method, path string, header http.Header) (int, []byte) {
	c.t.Helper()
	return c.at(c.admin, method, path, nil, header)
}

func (c ingestClient) at(base, method, path string, body []byte, header http.Header) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// post sends body to /webhook signed with secret (unsigned when empty).
func (c ingestClient) post(body []byte, secret string) int {
	c.t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if secret != "" {
		h.Set(webhook.SignatureHeader, webhook.Sign(body, []byte(secret)))
	}
	code, _ := c.do(http.MethodPost, "/webhook", body, h)
	return code
}

// context reads a stored context through the admin API.
func (c ingestClient) context(channel, business, user, token string) (int, map[string]any) {
	c.t.Helper()
	code, b := c.adm(http.MethodGet, "/v1/contexts/"+channel+"/"+business+"/"+user, http.Header{"Authorization": {"Bearer " + token}})
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("admin answer %d is not JSON: %q", code, b)
	}
	return code, m
}

func webhookFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "webhooks", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIngestE2E(t *testing.T) {
	rs := redistest.Start(t)
	addr, adminAddr := freeAddr(t), freeAddr(t)
	p := start(t, "ingest", "", []string{
		"INGEST_ADDR=" + addr,
		"ADMIN_ADDR=" + adminAddr,
		"REDIS_URL=" + rs.URL(),
		"META_APP_SECRET=e2e-previous-secret," + e2eAppSecret,
		"META_VERIFY_TOKEN=" + e2eVerifyToken,
		"ADMIN_TOKEN=" + e2eAdminToken,
		"ONPREM_SECRET=" + e2eOnPremSecret,
		"ONPREM_WABA_ID=" + e2eOnPremWABA,
		"BODY_LIMIT=64KiB",
		"LOG_LEVEL=debug",
	})
	if got := p.waitOutput(regexp.MustCompile(`"msg":"listening".*"addr":"([^"]+)"`), 30*time.Second); got != addr {
		t.Errorf("logged bound address %q; want %q", got, addr)
	}
	c := ingestClient{t: t, base: "http://" + addr, admin: "http://" + adminAddr}
	waitHTTP(t, c.base+"/readyz", 10*time.Second)

	t.Run("handshake", func(t *testing.T) {
		q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {e2eVerifyToken}, "hub.challenge": {"1158201444"}}
		if code, body := c.do(http.MethodGet, "/webhook?"+q.Encode(), nil, nil); code != 200 || string(body) != "1158201444" {
			t.Errorf("handshake = %d %q; want 200 with the challenge", code, body)
		}
		q.Set("hub.verify_token", "wrong")
		if code, _ := c.do(http.MethodGet, "/webhook?"+q.Encode(), nil, nil); code != 403 {
			t.Errorf("handshake with a wrong token = %d; want 403", code)
		}
	})

	waClick := webhookFixture(t, "whatsapp_cloud_text_with_ctwa_referral.json")
	t.Run("signed deliveries store contexts", func(t *testing.T) {
		for _, name := range []string{"whatsapp_cloud_text_with_ctwa_referral.json", "messenger_postback_with_referral.json", "instagram_message_with_ad_referral.json"} {
			if code := c.post(webhookFixture(t, name), e2eAppSecret); code != 200 {
				t.Errorf("POST %s = %d; want 200", name, code)
			}
		}
		code, got := c.context("whatsapp", "102290129340398", "16315551234", e2eAdminToken)
		if code != 200 || got["ctwa_clid"] != "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a" ||
			got["ad_id"] != "120212345678901234" || got["first_seen"] != "2025-11-23T12:13:20Z" || got["last_seen"] != "2025-11-23T12:13:20Z" {
			t.Errorf("whatsapp context = %d %v", code, got)
		}
		// WhatsApp contexts are found by the business phone_number_id too.
		if code, got := c.context("whatsapp", "106540352242922", "16315551234", e2eAdminToken); code != 200 || got["business_id"] != "102290129340398" {
			t.Errorf("whatsapp context by phone_number_id = %d %v", code, got)
		}
		if code, got := c.context("messenger", "109876543210987", "6789012345678903", e2eAdminToken); code != 200 || got["ref"] != "spring_sale" || got["ad_id"] != "120210000000000111" {
			t.Errorf("messenger context = %d %v", code, got)
		}
		if code, got := c.context("instagram", "17841405555555555", "1234567890123456", e2eAdminToken); code != 200 || got["ref"] != "ig_promo" {
			t.Errorf("instagram context = %d %v", code, got)
		}
	})

	t.Run("rejections", func(t *testing.T) {
		tests := []struct {
			name   string
			body   []byte
			secret string
			want   int
		}{
			{"unsigned", waClick, "", 401},
			{"wrong secret", waClick, "not-our-secret", 401},
			{"over BODY_LIMIT", bytes.Repeat([]byte(" "), 64<<10+1), e2eAppSecret, 413},
			{"signed non-JSON", []byte("<xml>nope</xml>"), e2eAppSecret, 400},
			{"status update", webhookFixture(t, "whatsapp_cloud_status_delivered.json"), e2eAppSecret, 200},
			{"plain text", webhookFixture(t, "messenger_plain_text.json"), e2eAppSecret, 200},
		}
		for _, tt := range tests {
			if code := c.post(tt.body, tt.secret); code != tt.want {
				t.Errorf("%s: POST /webhook = %d; want %d", tt.name, code, tt.want)
			}
		}
		// Ignored kinds stored nothing.
		if code, _ := c.context("messenger", "109876543210987", "6789012345678904", e2eAdminToken); code != 404 {
			t.Errorf("context of a plain-text sender = %d; want 404", code)
		}
	})

	t.Run("on-premises", func(t *testing.T) {
		body := webhookFixture(t, "whatsapp_onprem_text_with_referral.json")
		if code, _ := c.do(http.MethodPost, "/webhook/onprem", body, nil); code != 401 {
			t.Errorf("POST /webhook/onprem without the secret = %d; want 401", code)
		}
		if code, _ := c.do(http.MethodPost, "/webhook/onprem", body, http.Header{"X-Onprem-Secret": {e2eOnPremSecret}}); code != 200 {
			t.Errorf("POST /webhook/onprem = %d; want 200", code)
		}
		if code, got := c.context("whatsapp", e2eOnPremWABA, "16315551234", e2eAdminToken); code != 200 || got["ad_id"] != "1234567890" {
			t.Errorf("on-prem context = %d %v; want the on-prem click (the newer one)", code, got)
		}
	})

	t.Run("admin", func(t *testing.T) {
		if code, _ := c.context("whatsapp", "102290129340398", "16315551234", "wrong"); code != 401 {
			t.Errorf("admin with a wrong token = %d; want 401", code)
		}
		if code, _ := c.adm(http.MethodGet, "/v1/contexts/whatsapp/102290129340398/16315551234", nil); code != 401 {
			t.Errorf("admin without a token = %d; want 401", code)
		}
		if code, _ := c.context("whatsapp", "102290129340398", "19990000000", e2eAdminToken); code != 404 {
			t.Errorf("admin for an unknown user = %d; want 404", code)
		}
	})

	// The webhook listener faces the internet: the admin API and the
	// metrics are not there, token or not; they are on the admin listener,
	// behind the token.
	t.Run("listeners", func(t *testing.T) {
		bearer := http.Header{"Authorization": {"Bearer " + e2eAdminToken}}
		for _, path := range []string{"/metrics", "/v1/contexts/whatsapp/102290129340398/16315551234"} {
			if code, _ := c.do(http.MethodGet, path, nil, bearer); code != 404 {
				t.Errorf("GET %s on the webhook listener = %d; want 404", path, code)
			}
			if code, _ := c.adm(http.MethodGet, path, nil); code != 401 {
				t.Errorf("GET %s on the admin listener without the token = %d; want 401", path, code)
			}
			if code, _ := c.adm(http.MethodGet, path, bearer); code != 200 {
				t.Errorf("GET %s on the admin listener with the token = %d; want 200", path, code)
			}
		}
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, _ := c.do(http.MethodGet, path, nil, nil); code != 200 {
				t.Errorf("GET %s on the webhook listener = %d; want 200", path, code)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		_, body := c.adm(http.MethodGet, "/metrics", http.Header{"Authorization": {"Bearer " + e2eAdminToken}})
		for _, want := range []string{
			`ingest_webhooks_total{channel="whatsapp",outcome="stored"} 1`,
			`ingest_webhooks_total{channel="unknown",outcome="bad_signature"} 2`,
			`ingest_signature_failures_total 2`,
			`ingest_webhooks_total{channel="onprem",outcome="stored"} 1`,
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("redis down and back", func(t *testing.T) {
		rs.Kill()
		if code := c.post(waClick, e2eAppSecret); code != 503 {
			t.Errorf("POST with Redis killed = %d; want 503", code)
		}
		if code, _ := c.do(http.MethodGet, "/readyz", nil, nil); code != 503 {
			t.Errorf("/readyz with Redis killed = %d; want 503", code)
		}
		rs.Restart() // empty, as after a crash without persistence
		waitFor(t, 10*time.Second, "the redelivery to be stored", func() bool { return c.post(waClick, e2eAppSecret) == 200 })
		if code, got := c.context("whatsapp", "102290129340398", "16315551234", e2eAdminToken); code != 200 || got["ad_id"] != "120212345678901234" {
			t.Errorf("context after the redelivery = %d %v", code, got)
		}
	})

	if err := p.Stop(20 * time.Second); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	out := p.Output()
	if !strings.Contains(out, `"msg":"stopped"`) {
		t.Errorf("no clean-stop log line in the output")
	}
	for _, s := range []string{e2eAppSecret, e2eVerifyToken, e2eAdminToken, e2eOnPremSecret, "16315551234", "6789012345678903", "1234567890123456", "ARAkLkA8rmlFeiCktEJQ", "Kerry Fisher"} {
		if strings.Contains(out, s) {
			t.Errorf("ingest output contains %q", s)
		}
	}
}

func TestIngestE2EConfig(t *testing.T) {
	wait := func(p *proc) int {
		t.Helper()
		select {
		case <-p.done:
			return p.cmd.ProcessState.ExitCode()
		case <-time.After(30 * time.Second):
			t.Fatalf("ingest still running:\n%s", p.Output())
			return -1
		}
	}
	p := start(t, "ingest", "", nil, "--help")
	if code := wait(p); code != 0 || !strings.Contains(p.Output(), "META_APP_SECRET") || !strings.Contains(p.Output(), "-redis-url") {
		t.Errorf("ingest --help exited %d with:\n%s", code, p.Output())
	}
	p = start(t, "ingest", "", []string{"META_APP_SECRET=x", "REDIS_URL=redis://127.0.0.1:1/0"})
	if code := wait(p); code == 0 || !strings.Contains(p.Output(), "META_VERIFY_TOKEN") {
		t.Errorf("ingest without META_VERIFY_TOKEN exited %d with:\n%s", code, p.Output())
	}
	p = start(t, "ingest", "", []string{"META_APP_SECRET=x", "META_VERIFY_TOKEN=y"})
	if code := wait(p); code == 0 || !strings.Contains(p.Output(), "REDIS_URL") {
		t.Errorf("ingest without REDIS_URL exited %d with:\n%s", code, p.Output())
	}
}
