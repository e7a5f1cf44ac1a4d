package ingest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/valyala/fastjson"

	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// FuzzRedact: redaction never panics, yields JSON, and never changes what
// webhook.Parse extracts, so a replayed capture stores the same contexts.
func FuzzRedact(f *testing.F) {
	for _, name := range fixtureNames(f) {
		f.Add(fixture(f, name))
	}
	p := &fastjson.Parser{}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := redact(p, body)
		if err != nil {
			return // not JSON: never captured
		}
		if err := fastjson.ValidateBytes(out); err != nil {
			t.Fatalf("redact output is not JSON: %v\n%s", err, out)
		}
		before, err1 := webhook.Parse(body)
		after, err2 := webhook.Parse(out)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("Parse errors differ: %v vs %v", err1, err2)
		}
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("Parse of the redacted body differs (-original +redacted):\n%s", diff)
		}
	})
}
