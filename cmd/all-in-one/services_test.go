package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/registry"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// TestDevIntakeToken: development mode sets an intake token long enough
// for the intake and prints it; a configured deployment gets none.
func TestDevIntakeToken(t *testing.T) {
	cfg, err := parseConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Services.Intake.Enabled() || cfg.Services.Intake.Tokens[0] != devIntakeToken {
		t.Fatalf("development intake tokens = %d; want %s", len(cfg.Services.Intake.Tokens), devIntakeToken)
	}
	var out bytes.Buffer
	printBanner(&out, cfg, "127.0.0.1:8080", "127.0.0.1:8081", "nats://127.0.0.1:4222")
	if !strings.Contains(out.String(), "/v1/conversions  (Bearer "+devIntakeToken+")") {
		t.Errorf("banner lacks the intake with its development token:\n%s", out.String())
	}
	vars := testVars(t.TempDir())
	if cfg, err = parseConfig(nil, func(k string) string { return vars[k] }); err != nil || cfg.Services.Intake.Enabled() {
		t.Errorf("configured all-in-one: intake enabled %v, %v; want off", cfg.Services.Intake.Enabled(), err)
	}
}

// TestServicesMounted runs all-in-one with the intake and forwarding on:
// a development REGISTRY_KEY is created in DATA_DIR (and said), the
// registry API is mounted behind ADMIN_TOKEN, the intake takes a
// conversion, and a verified webhook reaches the inbox.
func TestServicesMounted(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	var mu sync.Mutex
	var got [][]byte
	inbox := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get(webhook.SignatureHeader) == webhook.Sign(b, []byte("aio-app-secret")) {
			mu.Lock()
			got = append(got, b)
			mu.Unlock()
		}
	}))
	t.Cleanup(inbox.Close)
	dir := t.TempDir()
	vars := testVars(dir)
	vars["INTAKE_TOKEN"] = "aio-intake-token-0123"
	vars["FORWARD_URLS"] = inbox.URL + "/hook"
	a := startAllInOne(t, vars)
	if _, err := os.Stat(filepath.Join(dir, registry.DevKeyFile)); err != nil {
		t.Errorf("no development key in DATA_DIR: %v", err)
	}
	if !strings.Contains(a.logs.String(), "REGISTRY_KEY is not set") {
		t.Error("the development key is not announced")
	}
	do := func(method, url, token, body string) int {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	// Mounted behind ADMIN_TOKEN, and kept in the embedded store
	// (test/allinone_registry_e2e_test.go restarts it too).
	if code := do(http.MethodPut, a.admin+"/v1/businesses/102290129340398", "wrong-token", `{"channel":"whatsapp","dataset_id":"1"}`); code != http.StatusUnauthorized {
		t.Errorf("PUT business with a wrong token = %d; want 401", code)
	}
	if code := do(http.MethodPut, a.admin+"/v1/businesses/102290129340398", "aio-admin", `{"channel":"whatsapp","dataset_id":"1","access_token":"EAABaioTOKEN0001"}`); code != http.StatusCreated {
		t.Errorf("PUT business on the embedded store = %d; want 201", code)
	}
	if code := do(http.MethodGet, a.admin+"/v1/businesses/102290129340398", "aio-admin", ""); code != http.StatusOK {
		t.Errorf("GET business on the embedded store = %d; want 200", code)
	}
	conv := `{"event_id":"aio-intake-1","event_name":"Purchase","event_time":` + strconv.FormatInt(time.Now().Unix(), 10) + `,"channel":"messenger","business_id":"109800000000001","user_id":"7100000000001","custom_data":{"currency":"USD","value":1}}`
	if code := do(http.MethodPost, a.admin+"/v1/conversions", "aio-intake-token-0123", conv); code != http.StatusAccepted {
		t.Errorf("POST conversion = %d; want 202", code)
	}
	body := []byte(`{"object":"page","entry":[]}`)
	req, _ := http.NewRequest(http.MethodPost, a.ingest+"/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, []byte("aio-app-secret")))
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST webhook = %d; want 200", resp.StatusCode)
	}
	waitFor(t, 30*time.Second, "the webhook at the inbox", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1 && bytes.Equal(got[0], body)
	})
}

// TestBannerRegistry: the banner shows the registry API with the embedded
// store too, and says when its secrets use the development key (and where
// that key lives, never the key).
func TestBannerRegistry(t *testing.T) {
	cfg, err := parseConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.DevRegistryKey = filepath.Join(cfg.DataDir, registry.DevKeyFile)
	var out bytes.Buffer
	printBanner(&out, cfg, "127.0.0.1:8080", "127.0.0.1:8081", "nats://127.0.0.1:4222")
	for _, want := range []string{"registry   http://127.0.0.1:8081/v1/businesses", "development REGISTRY_KEY kept in " + cfg.DevRegistryKey} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "needs REDIS_URL") {
		t.Errorf("banner still says the registry needs REDIS_URL:\n%s", out.String())
	}
	cfg.DevRegistryKey = ""
	out.Reset()
	printBanner(&out, cfg, "127.0.0.1:8080", "127.0.0.1:8081", "nats://127.0.0.1:4222")
	if strings.Contains(out.String(), "development REGISTRY_KEY") {
		t.Errorf("banner claims a development key with REGISTRY_KEY set:\n%s", out.String())
	}
}
