package registryapi

import (
	"net/http"
	"strings"
	"testing"
)

// PATCH replaces the fields given and keeps the rest, secrets included:
// the console edits a business without holding its token.
func TestPatchKeepsSecrets(t *testing.T) {
	ta := newTestAPI(t, apiOpts{})
	if status, body := ta.do("PATCH", "/v1/businesses/111", `{"enabled": false}`); status != http.StatusNotFound {
		t.Fatalf("PATCH of an unknown business = %d %s; want 404", status, body)
	}
	ta.do("PUT", "/v1/businesses/111", waBody)
	status, body := ta.do("PATCH", "/v1/businesses/111", `{"enabled": false, "test_event_code": "TEST77"}`)
	if status != http.StatusOK {
		t.Fatalf("PATCH = %d %s; want 200", status, body)
	}
	got := decode[businessJSON](t, body)
	if got.Enabled || got.TestEventCode != "TEST77" || !got.AccessTokenSet || got.DatasetID != "9001" || got.PartnerAgent != "acme" {
		t.Errorf("PATCH answer = %+v; want disabled, TEST77, the rest kept", got)
	}
	b, err := ta.store.Get(t.Context(), "111")
	if err != nil || b.AccessToken.Reveal() != testToken || b.AppSecret.Reveal() != testAppSecret {
		t.Fatalf("stored record: %v; want the token and app secret kept", err)
	}
	for body, want := range map[string]string{
		`{"dataset_id": ""}`: "dataset_id",
		`{"token": "x"}`:     "token",
	} {
		if status, out := ta.do("PATCH", "/v1/businesses/111", body); status != http.StatusBadRequest || !strings.Contains(out, want) {
			t.Errorf("PATCH %s = %d %s; want 400 naming %s", body, status, out, want)
		}
	}
}
