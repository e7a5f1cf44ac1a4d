package registryapi

import (
	"strings"
	"testing"

	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// A PUT's changes name fields and old and new values, secrets by name only.
func TestChangesHideSecrets(t *testing.T) {
	old := registry.Business{ID: "1", Channel: registry.Messenger, DatasetID: "7", Enabled: true,
		AccessToken: registry.NewSecret("EAAoldtoken0001")}
	b := old
	b.DatasetID, b.Enabled, b.AccessToken, b.AppSecret = "8", false, registry.NewSecret("EAAnewtoken0002"), registry.NewSecret("appsecret0003")
	got := strings.Join(changes(old, nil, b), "; ")
	want := "dataset_id: 7 -> 8; enabled: true -> false; access_token changed; app_secret set"
	if got != want {
		t.Errorf("changes = %q; want %q", got, want)
	}
	created := strings.Join(changes(registry.Business{}, registry.ErrNotFound, b), "; ")
	for _, s := range []string{"EAAoldtoken0001", "EAAnewtoken0002", "appsecret0003"} {
		if strings.Contains(got+created, s) {
			t.Errorf("changes hold a secret: %q / %q", got, created)
		}
	}
	if !strings.HasPrefix(created, "created") || !strings.Contains(created, "access_token set") {
		t.Errorf("created = %q", created)
	}
}
