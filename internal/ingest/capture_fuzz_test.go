package ingest

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/valyala/fastjson"

	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// FuzzRedact: redaction never panics; for every valid JSON input it writes
// valid JSON (json.Valid, not only fastjson's looser check); and a redacted
// capture replays: it parses as a webhook, on either path, to exactly what
// the original did, so a replay stores the same contexts. The seed corpus
// (testdata/fuzz/FuzzRedact) holds the input that once broke this: an ad
// headline with `\"` and an emoji flag, re-escaped with Go quoting.
func FuzzRedact(f *testing.F) {
	for _, name := range fixtureNames(f) {
		f.Add(fixture(f, name))
	}
	p := &fastjson.Parser{}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := webhook.Redact(p, body)
		if err != nil {
			if json.Valid(body) && fastjson.ValidateBytes(body) == nil {
				t.Fatalf("redact refused valid JSON: %v", err)
			}
			return // not JSON: never captured
		}
		if !json.Valid(out) {
			t.Fatalf("redact output is not JSON:\n%s", out)
		}
		for _, parse := range []func([]byte) (webhook.Payload, error){
			webhook.Parse,
			func(b []byte) (webhook.Payload, error) { return webhook.ParseOnPrem(b, testOnPremWABA) },
		} {
			before, err1 := parse(body)
			after, err2 := parse(out)
			if (err1 == nil) != (err2 == nil) {
				t.Fatalf("Parse errors differ: %v vs %v", err1, err2)
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("Parse of the redacted body differs (-original +redacted):\n%s", diff)
			}
		}
	})
}
