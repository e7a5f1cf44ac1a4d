package test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAllInOneRegistryE2E (issue 12): the built all-in-one with nothing
// configured (no REDIS_URL, no REGISTRY_KEY, development secrets) keeps the
// business registry in its embedded store. It creates a development
// REGISTRY_KEY in DATA_DIR and says so (a WARN with the file, and the
// banner); a business PUT with an access_token through the admin API is
// read back with access_token_set and its last four characters only; after
// a SIGKILL and a restart the record is still there and still decrypts
// with the same key file; with another key it does not.
func TestAllInOneRegistryE2E(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	env := []string{"INGEST_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "NATS_ADDR=127.0.0.1:0", "DATA_DIR=" + data}
	const (
		adminToken = "dev-admin-token" // all-in-one's development ADMIN_TOKEN
		token      = "EAAaioRegistryToken0123456789wxyz"
		appSecret  = "aioRegistryAppSecret0123456789"
		id         = "102290129340398"
	)
	w := startWalkthrough(t, dir, env)
	keyFile := filepath.Join(data, "registry.key")
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatalf("no development key in DATA_DIR: %v", err)
	}
	out := w.p.Output()
	for _, want := range []string{`"level":"warn"`, "REGISTRY_KEY is not set", `"file":"` + keyFile + `"`, `"created":true`,
		"development REGISTRY_KEY kept in " + keyFile, "registry   " + w.admin + "/v1/businesses"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, strings.TrimSpace(string(key))) {
		t.Error("the output shows the development key")
	}
	if strings.Contains(out, "needs REDIS_URL") {
		t.Errorf("the banner still says the registry needs REDIS_URL:\n%s", out)
	}

	do := func(w walkthrough, method, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, w.admin+"/v1/businesses/"+id, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	type shown struct {
		DatasetID        string   `json:"dataset_id"`
		AccessTokenSet   bool     `json:"access_token_set"`
		AccessTokenLast4 string   `json:"access_token_last4"`
		AppSecretSet     bool     `json:"app_secret_set"`
		PhoneNumberIDs   []string `json:"phone_number_ids"`
	}
	check := func(when string, status int, body string) {
		t.Helper()
		var got shown
		if err := json.Unmarshal([]byte(body), &got); status != http.StatusOK || err != nil {
			t.Fatalf("%s: GET = %d %s; want 200", when, status, body)
		}
		if !got.AccessTokenSet || got.AccessTokenLast4 != "wxyz" || !got.AppSecretSet || got.DatasetID != "5550001" ||
			len(got.PhoneNumberIDs) != 1 || got.PhoneNumberIDs[0] != "106540352242922" {
			t.Errorf("%s: GET = %s; want the record, its token set and decrypted (last four wxyz)", when, body)
		}
		for _, secret := range []string{token, appSecret, strings.TrimSpace(string(key))} {
			if strings.Contains(body, secret) {
				t.Fatalf("%s: GET shows a secret: %s", when, body)
			}
		}
	}
	put := `{"channel":"whatsapp","dataset_id":"5550001","access_token":"` + token + `","app_secret":"` + appSecret + `","phone_number_ids":["106540352242922"]}`
	if status, body := do(w, http.MethodPut, put); status != http.StatusCreated {
		t.Fatalf("PUT = %d %s; want 201", status, body)
	}
	status, body := do(w, http.MethodGet, "")
	check("before restart", status, body)

	w.p.Kill() // a crash: the write was acknowledged, so it is on disk
	w = startWalkthrough(t, dir, env)
	status, body = do(w, http.MethodGet, "")
	check("after SIGKILL and restart", status, body)
	if out := w.p.Output(); !strings.Contains(out, `"created":false`) || !strings.Contains(out, "REGISTRY_KEY is not set") {
		t.Errorf("the restarted all-in-one did not reuse and announce the development key:\n%s", out)
	}
	if again, err := os.ReadFile(keyFile); err != nil || !bytes.Equal(again, key) {
		t.Errorf("the development key file changed across the restart: %v", err)
	}
	// The all-in-one's sender reads the record: a conversion of the
	// business goes (dry) to the record's new dataset with its test event
	// code, with no restart after the change.
	replaced := strings.Replace(put, "5550001", "5550002", 1)
	replaced = strings.Replace(replaced, `"channel":"whatsapp"`, `"channel":"whatsapp","test_event_code":"TEST4242"`, 1)
	if status, _ := do(w, http.MethodPut, replaced); status != http.StatusOK {
		t.Errorf("PUT replacing the restored record = %d; want 200", status)
	}
	conv := fmt.Sprintf(`{"event_id":"aio-registry-1","event_name":"Purchase","event_time":%d,"channel":"whatsapp","business_id":"%s","ctwa_clid":"ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a","custom_data":{"currency":"USD","value":1}}`, time.Now().Unix(), id)
	req, _ := http.NewRequest(http.MethodPost, w.admin+"/v1/conversions", strings.NewReader(conv))
	req.Header.Set("Authorization", "Bearer dev-intake-token-0") // all-in-one's development INTAKE_TOKEN
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/conversions = %d; want 202", resp.StatusCode)
	}
	dry := filepath.Join(data, "capi-dryrun.jsonl")
	waitFor(t, time.Minute, "the conversion in the dry-run file under the record's dataset", func() bool {
		b, _ := os.ReadFile(dry)
		return bytes.Contains(b, []byte(`"dataset_id":"5550002"`)) && bytes.Contains(b, []byte("aio-registry-1"))
	})
	if b, _ := os.ReadFile(dry); !bytes.Contains(b, []byte(`"test_event_code":"TEST4242"`)) {
		t.Errorf("the dry-run request lacks the record's test_event_code:\n%s", b)
	} else if bytes.Contains(b, []byte(token)) || bytes.Contains(b, []byte(appSecret)) {
		t.Error("the dry-run file shows a secret")
	}
	if err := w.p.Stop(time.Minute); err != nil {
		t.Fatal(err)
	}

	// With another key the stored token does not decrypt: the dev key file
	// is what held it.
	other := "k9:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	w = startWalkthrough(t, dir, append(env, "REGISTRY_KEY="+other))
	if status, body := do(w, http.MethodGet, ""); status == http.StatusOK {
		t.Errorf("GET with another REGISTRY_KEY = %d %s; want a failure to decrypt", status, body)
	} else if strings.Contains(body, token) || strings.Contains(body, other[3:]) {
		t.Errorf("the failure shows a secret: %s", body)
	}
	if strings.Contains(w.p.Output(), "development REGISTRY_KEY") {
		t.Errorf("with REGISTRY_KEY set the banner still claims the development key:\n%s", w.p.Output())
	}
	for _, secret := range []string{token, appSecret, strings.TrimSpace(string(key)), other} {
		if strings.Contains(w.p.Output(), secret) {
			t.Errorf("the output shows a secret")
		}
	}
}
