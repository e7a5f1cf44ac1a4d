package webhook

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// seedBodies returns every webhook fixture in testdata.
func seedBodies(f *testing.F) [][]byte {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	var bodies [][]byte
	for _, name := range files {
		if filepath.Base(name) == "expected.json" {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	return bodies
}

// FuzzParse checks that no body makes Parse or ParseOnPrem panic, that what
// they return survives a JSON round trip unchanged (so it can be captured,
// queued and replayed), and that every Touch is keyed.
func FuzzParse(f *testing.F) {
	for _, b := range seedBodies(f) {
		f.Add(b)
	}
	f.Add([]byte(page(`{"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":1.7e12,"referral":` + adRef + `}`)))
	f.Add([]byte(cloud(`{"contacts":[{"wa_id":"C"}],"messages":[{"referral":` + click + `}]}`)))
	f.Add([]byte(automatic(`{"id":"M","event_name":"Purchase","custom_data":{"a\u0001":"\u0001\"<"}}`)))
	f.Fuzz(func(t *testing.T, body []byte) {
		pl, err := Parse(body)
		checkPayload(t, body, pl, err, true)
		pl, err = ParseOnPrem(body, "W")
		checkPayload(t, body, pl, err, true)
		pl, err = ParseOnPrem(body, "")
		checkPayload(t, body, pl, err, false)
	})
}

func checkPayload(t *testing.T, body []byte, pl Payload, err error, wantBusiness bool) {
	t.Helper()
	if err != nil {
		if err != ErrNotJSON {
			t.Fatalf("error %v; want nil or ErrNotJSON", err)
		}
		// Below 300 bytes no JSON nests deeper than fastjson's limit, so a
		// valid JSON object must be accepted.
		if trimmed := bytes.TrimSpace(body); len(body) < 300 && json.Valid(body) && trimmed[0] == '{' {
			t.Fatalf("valid JSON object rejected: %q", body)
		}
		if !cmp.Equal(pl, Payload{}) {
			t.Fatalf("Payload %+v alongside an error", pl)
		}
		return
	}
	for _, tc := range pl.Touches {
		if tc.UserID == "" || (wantBusiness && tc.BusinessID == "") || tc.Channel != pl.Channel {
			t.Fatalf("unkeyed touch %+v in %+v", tc, pl)
		}
		if tc.Time < 0 {
			t.Fatalf("negative time in %+v", tc)
		}
	}
	for _, ae := range pl.AutomaticEvents {
		if ae.BusinessID == "" || ae.MessageID == "" || ae.EventName == "" || ae.Time < 0 ||
			(ae.CustomData != nil && (!json.Valid(ae.CustomData) || ae.CustomData[0] != '{')) {
			t.Fatalf("unkeyed or odd automatic event %+v in %+v", ae, pl)
		}
	}
	if pl.Ignored < 0 || pl.Malformed < 0 {
		t.Fatalf("negative counts in %+v", pl)
	}
	if !utf8.ValidString(pl.Object) {
		t.Fatalf("Object %q is not valid UTF-8", pl.Object)
	}
	b, err := json.Marshal(pl)
	if err != nil {
		t.Fatalf("marshal %+v: %v", pl, err)
	}
	var back Payload
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	if diff := cmp.Diff(pl, back); diff != "" {
		t.Fatalf("JSON round trip changed the Payload (-parsed +round-tripped):\n%s", diff)
	}
}

// FuzzVerify checks that Verify accepts exactly the signature Sign (and an
// independent HMAC) computes for the body under one of the secrets: a body or
// header mutated from a validly signed seed never verifies unless unchanged.
func FuzzVerify(f *testing.F) {
	secret := []byte("fuzz-app-secret")
	secrets := [][]byte{[]byte("retired-secret"), secret}
	for _, b := range seedBodies(f) {
		f.Add(b, Sign(b, secret))
	}
	f.Add([]byte{}, Sign(nil, secret))
	v := NewVerifier(secrets) // shared: pooled states are reused across inputs
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		want := refSign(body, secret)
		if got := Sign(body, secret); got != want {
			t.Fatalf("Sign = %q; independent HMAC = %q", got, want)
		}
		err := Verify(body, header, secrets)
		if ok := err == nil; ok != (header == want) {
			t.Fatalf("Verify(%q, %q) = %v; want nil exactly when header is %q", body, header, err, want)
		}
		if err != nil && err != ErrSignature {
			t.Fatalf("Verify error %v; want ErrSignature", err)
		}
		if verr := v.Verify(body, header); verr != err {
			t.Fatalf("Verifier.Verify(%q, %q) = %v; Verify = %v", body, header, verr, err)
		}
	})
}
