package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// testKey returns a REGISTRY_KEY entry "id:base64" whose 32 bytes are all b.
func testKey(id string, b byte) string {
	return id + ":" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(rune(b)), 32)))
}

func mustKeyring(t *testing.T, v string) *Keyring {
	t.Helper()
	k, err := ParseKeyring(v)
	if err != nil {
		t.Fatalf("ParseKeyring: %v", err)
	}
	return k
}

func TestParseKeyring(t *testing.T) {
	k1, k2 := testKey("k1", 'a'), testKey("k2", 'b')
	bare := strings.TrimPrefix(k1, "k1:")
	tests := []struct {
		name    string
		in      string
		wantIDs []string
		wantErr string
	}{
		{"empty", "", nil, ""},
		{"one with id", k1, []string{"k1"}, ""},
		{"current first", k2 + "," + k1, []string{"k2", "k1"}, ""},
		{"bare key gets a derived id", bare, nil, ""},
		{"raw url base64", "k1:" + base64.RawURLEncoding.EncodeToString(make([]byte, 32)), []string{"k1"}, ""},
		{"short key", "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 16)), nil, "16 bytes; want 32"},
		{"not base64", "k1:%%%not-base64%%%", nil, "not base64"},
		{"bare among several", bare + "," + k2, nil, "want id:base64"},
		{"duplicate id", k1 + "," + testKey("k1", 'c'), nil, "listed twice"},
		{"bad id", "k 1:" + bare, nil, "key id must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKeyring(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), KeyEnv) {
					t.Fatalf("ParseKeyring = %v; want an error naming %s and containing %q", err, KeyEnv, tt.wantErr)
				}
				if strings.Contains(err.Error(), bare) {
					t.Fatalf("error %q contains the key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKeyring: %v", err)
			}
			got := k.IDs()
			if tt.name == "bare key gets a derived id" {
				if len(got) != 1 || !strings.HasPrefix(got[0], "k") || len(got[0]) != 9 {
					t.Fatalf("IDs = %v; want one derived id k<8 hex>", got)
				}
				again := mustKeyring(t, bare)
				if again.CurrentID() != got[0] {
					t.Fatalf("derived id not stable: %s vs %s", again.CurrentID(), got[0])
				}
				return
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantIDs) {
				t.Fatalf("IDs = %v; want %v", got, tt.wantIDs)
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	k := mustKeyring(t, testKey("k1", 'a'))
	sealed, err := k.seal("111", fieldAccessToken, "EAAB-secret-token-value")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "secret-token") || !strings.HasPrefix(sealed, "enc1:k1:") {
		t.Fatalf("sealed = %q; want enc1:k1:<ciphertext>", sealed)
	}
	again, _ := k.seal("111", fieldAccessToken, "EAAB-secret-token-value")
	if again == sealed {
		t.Fatal("two seals of one value are equal; the nonce is not random")
	}
	plain, kid, err := k.open("111", fieldAccessToken, sealed)
	if err != nil || plain != "EAAB-secret-token-value" || kid != "k1" {
		t.Fatalf("open = %q, %q, %v; want the value, k1, nil", plain, kid, err)
	}

	tests := []struct {
		name, keyring, business, field, wantErr string
	}{
		{"other key, same id", testKey("k1", 'z'), "111", fieldAccessToken, "does not open with key id k1"},
		{"key id not listed", testKey("k2", 'a'), "111", fieldAccessToken, "key id k1, which REGISTRY_KEY does not list"},
		{"copied to another business", testKey("k1", 'a'), "222", fieldAccessToken, "copied from another record"},
		{"copied to another field", testKey("k1", 'a'), "111", fieldAppSecret, "copied from another record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := mustKeyring(t, tt.keyring).open(tt.business, tt.field, sealed)
			if !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("open = %v; want ErrDecrypt containing %q", err, tt.wantErr)
			}
		})
	}
	var none *Keyring
	if _, err := none.seal("111", fieldAccessToken, "x"); !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), "REGISTRY_KEY") {
		t.Fatalf("seal without a key = %v; want ErrNoKey naming REGISTRY_KEY", err)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	const tok = "EAABsecretTOKENvalue9876"
	b := Business{ID: "111", Channel: WhatsApp, AccessToken: NewSecret(tok), AppSecret: NewSecret("0123456789abcdef0123456789abcdef")}
	outs := []string{b.AccessToken.String(), b.AccessToken.GoString()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, b), fmt.Sprintf(verb, &b), fmt.Sprintf(verb, b.AccessToken))
	}
	j, _ := json.Marshal(b)
	outs = append(outs, string(j))
	for _, o := range outs {
		if strings.Contains(o, tok) || strings.Contains(o, "secretTOKEN") || strings.Contains(o, "0123456789abcdef") {
			t.Errorf("output %q contains a secret", o)
		}
	}
	if got := b.AccessToken.String(); got != "[set …9876]" {
		t.Errorf("String = %q; want [set …9876]", got)
	}
	if got := NewSecret("short").String(); got != "[set]" {
		t.Errorf("short String = %q; want [set]", got)
	}
	if got := (Secret{}).String(); got != "[unset]" {
		t.Errorf("unset String = %q; want [unset]", got)
	}
}
