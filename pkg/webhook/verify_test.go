package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// refSign computes the signature independently of Sign, so the tests do not
// check Sign against itself.
func refSign(body, secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func TestSign(t *testing.T) {
	// RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
	got := Sign([]byte("what do ya want for nothing?"), []byte("Jefe"))
	want := "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got != want {
		t.Errorf("Sign(rfc4231 case 2) = %q; want %q", got, want)
	}
	body := []byte(`{"object":"page"}`)
	if got, want := Sign(body, []byte("s3cret")), refSign(body, []byte("s3cret")); got != want {
		t.Errorf("Sign(%q) = %q; want %q", body, got, want)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"object":"whatsapp_business_account","entry":[]}`)
	secret := []byte("app-secret-1")
	other := []byte("app-secret-2")
	good := refSign(body, secret)
	tests := []struct {
		name    string
		body    []byte
		header  string
		secrets [][]byte
		wantErr bool
	}{
		{name: "good", body: body, header: good, secrets: [][]byte{secret}},
		{name: "wrong secret", body: body, header: good, secrets: [][]byte{other}, wantErr: true},
		{name: "second of several secrets (rotation)", body: body, header: good, secrets: [][]byte{other, secret}},
		{name: "first of several secrets", body: body, header: good, secrets: [][]byte{secret, other}},
		{name: "no secrets", body: body, header: good, secrets: nil, wantErr: true},
		{name: "empty secret never matches", body: body, header: refSign(body, nil), secrets: [][]byte{{}}, wantErr: true},
		{name: "missing header", body: body, header: "", secrets: [][]byte{secret}, wantErr: true},
		{name: "bare prefix", body: body, header: "sha256=", secrets: [][]byte{secret}, wantErr: true},
		{name: "no sha256= prefix", body: body, header: strings.TrimPrefix(good, "sha256="), secrets: [][]byte{secret}, wantErr: true},
		{name: "sha1 prefix", body: body, header: "sha1=" + strings.TrimPrefix(good, "sha256="), secrets: [][]byte{secret}, wantErr: true},
		{name: "uppercase prefix", body: body, header: "SHA256=" + strings.TrimPrefix(good, "sha256="), secrets: [][]byte{secret}, wantErr: true},
		// Meta sends lowercase hex; only the canonical spelling is accepted
		// (see Verify's doc comment).
		{name: "uppercase hex", body: body, header: "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), secrets: [][]byte{secret}, wantErr: true},
		{name: "truncated", body: body, header: good[:len(good)-2], secrets: [][]byte{secret}, wantErr: true},
		{name: "extra byte", body: body, header: good + "0", secrets: [][]byte{secret}, wantErr: true},
		{name: "not hex", body: body, header: good[:len(good)-1] + "g", secrets: [][]byte{secret}, wantErr: true},
		{name: "trailing space", body: body, header: good[:len(good)-1] + " ", secrets: [][]byte{secret}, wantErr: true},
		{name: "tampered body", body: append([]byte(" "), body...), header: good, secrets: [][]byte{secret}, wantErr: true},
		{name: "empty body signed", body: []byte{}, header: refSign(nil, secret), secrets: [][]byte{secret}},
		{name: "empty body, signature of another body", body: nil, header: good, secrets: [][]byte{secret}, wantErr: true},
		{name: "all zero digest", body: body, header: "sha256=" + strings.Repeat("0", 64), secrets: [][]byte{secret}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.body, tt.header, tt.secrets)
			// The pooled Verifier answers the same, also on reuse.
			v := NewVerifier(tt.secrets)
			for i := range 3 {
				if verr := v.Verify(tt.body, tt.header); verr != err {
					t.Fatalf("Verifier.Verify call %d = %v; Verify = %v", i+1, verr, err)
				}
			}
			if tt.wantErr {
				if !errors.Is(err, ErrSignature) {
					t.Errorf("Verify(%q, %q) = %v; want ErrSignature", tt.body, tt.header, err)
				}
				return
			}
			if err != nil {
				t.Errorf("Verify(%q, %q) = %v; want nil", tt.body, tt.header, err)
			}
		})
	}
}

func TestVerifyAllocs(t *testing.T) {
	body := []byte(`{"object":"page","entry":[]}`)
	secrets := [][]byte{[]byte("old"), []byte("new")}
	header := Sign(body, secrets[1])
	perSecret := testing.AllocsPerRun(100, func() { _ = Verify(body, header, secrets[1:]) })
	bad := testing.AllocsPerRun(100, func() { _ = Verify(body, "sha256=zz", secrets) })
	if bad != 0 {
		t.Errorf("Verify with a malformed header allocates %v times; want 0", bad)
	}
	t.Logf("Verify allocations with one secret: %v", perSecret)
	if raceEnabled {
		return // sync.Pool drops items under -race
	}
	v := NewVerifier(secrets)
	if pooled := testing.AllocsPerRun(100, func() { _ = v.Verify(body, header) }); pooled != 0 {
		t.Errorf("Verifier.Verify with the second of two secrets allocates %v times; want 0", pooled)
	}
}

func TestChallenge(t *testing.T) {
	tests := []struct {
		name                           string
		mode, token, challenge, verify string
		want                           string
		ok                             bool
	}{
		{name: "good", mode: "subscribe", token: "tok", challenge: "1158201444", verify: "tok", want: "1158201444", ok: true},
		{name: "wrong token", mode: "subscribe", token: "tok2", challenge: "1", verify: "tok"},
		{name: "token prefix", mode: "subscribe", token: "to", challenge: "1", verify: "tok"},
		{name: "wrong mode", mode: "unsubscribe", token: "tok", challenge: "1", verify: "tok"},
		{name: "missing mode", mode: "", token: "tok", challenge: "1", verify: "tok"},
		{name: "empty verify token never matches", mode: "subscribe", token: "", challenge: "1", verify: ""},
		{name: "empty token", mode: "subscribe", token: "", challenge: "1", verify: "tok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Challenge(tt.mode, tt.token, tt.challenge, tt.verify)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Challenge(%q, %q, %q, %q) = %q, %v; want %q, %v",
					tt.mode, tt.token, tt.challenge, tt.verify, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestSignatureWellFormed(t *testing.T) {
	good := Sign([]byte("{}"), []byte("k"))
	tests := []struct {
		header string
		want   bool
	}{
		{good, true},
		{"", false},
		{"sha256=", false},
		{"sha1=" + good[len("sha256="):], false},
		{strings.ToUpper(good), false},
		{good[:len(good)-1], false},
		{good + "0", false},
		{good[:len(good)-1] + "g", false},
	}
	for _, tt := range tests {
		if got := SignatureWellFormed(tt.header); got != tt.want {
			t.Errorf("SignatureWellFormed(%q) = %v; want %v", tt.header, got, tt.want)
		}
	}
}
