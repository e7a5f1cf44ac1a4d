package registry

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestParseDatasetsFile(t *testing.T) {
	env := map[string]string{"PAGE2_TOKEN": testToken2, "CAPI_ACCESS_TOKEN": testToken}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name    string
		in      string
		wantErr []string // substrings of the error; nil = success
	}{
		{"ok", `{"111": {"dataset_id": "9001", "access_token_env": "PAGE2_TOKEN"}, "222": {}, "333": {"access_token_env": "CAPI_ACCESS_TOKEN"}}`, nil},
		{"misspelt key", `{"111": {"datasetid": "9001"}}`, []string{"business 111", `unknown key "datasetid"`, `did you mean "dataset_id"`}},
		{"other unknown key", `{"111": {"token": "x"}}`, []string{`unknown key "token"`, "known keys: dataset_id, access_token_env"}},
		{"inline token", `{"111": {"access_token": "EAABinline"}}`, []string{`inline "access_token" is not allowed`, "access_token_env", "PUT /v1/businesses/111"}},
		{"env not set", `{"111": {"access_token_env": "MISSING_TOKEN"}}`, []string{"access_token_env names MISSING_TOKEN, which is not set"}},
		{"bad business id", `{"page-1": {}}`, []string{`key "page-1"`, "digits only"}},
		{"bad dataset id", `{"111": {"dataset_id": "abc"}}`, []string{"dataset_id", "digits only"}},
		{"entry not an object", `{"111": "9001"}`, []string{"business 111", "want an object"}},
		{"not an object", `[1]`, []string{"CAPI_DATASETS_FILE", "want {"}},
		{"number dataset id", `{"111": {"dataset_id": 9001}}`, []string{"must be strings"}},
		{"trailing data", `{} {}`, []string{"data after the object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDatasetsFile([]byte(tt.in), Messenger, getenv)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("ParseDatasetsFile: %v", err)
				}
				if len(got) != 3 || got[0].ID != "111" || got[0].DatasetID != "9001" || got[0].AccessToken.Reveal() != testToken2 ||
					got[0].Channel != Messenger || !got[0].Enabled || got[1].AccessToken.IsSet() || got[2].AccessToken.IsSet() {
					t.Fatalf("ParseDatasetsFile = %+v; want 111 with PAGE2_TOKEN's token, 222 and 333 on the default token", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseDatasetsFile = %+v; want an error", got)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "EAABinline") {
				t.Errorf("error %q quotes the inline token", err)
			}
		})
	}
}

func TestImport(t *testing.T) { forBackends(t, testImport) }

func testImport(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	s := newTestStore(t, rdb, testKey("k1", 'a'))
	bs, err := ParseDatasetsFile([]byte(`{"111": {"dataset_id": "9001", "access_token_env": "T1"}, "222": {"dataset_id": "9002"}}`),
		WhatsApp, func(string) string { return testToken })
	if err != nil {
		t.Fatal(err)
	}
	edited := testBusiness("222")
	edited.AccessToken = NewSecret(testToken2)
	if _, err := s.Put(ctx, edited); err != nil {
		t.Fatal(err)
	}
	res, err := s.Import(ctx, bs)
	if err != nil || !slices.Equal(res.Created, []string{"111"}) || !slices.Equal(res.Skipped, []string{"222"}) {
		t.Fatalf("Import = %+v, %v; want 111 created, 222 skipped", res, err)
	}
	if b, _ := s.Get(ctx, "222"); b.AccessToken.Reveal() != testToken2 {
		t.Fatal("Import replaced a record edited through the API")
	}
	if b, err := s.Get(ctx, "111"); err != nil || b.AccessToken.Reveal() != testToken || b.DatasetID != "9001" {
		t.Fatalf("imported 111 = %v; want its dataset and token", err)
	}
	if _, err := NewStore(rdb, nil).Import(ctx, bs[:1]); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Import of a token without REGISTRY_KEY = %v; want ErrNoKey", err)
	}
}
