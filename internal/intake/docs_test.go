package intake

import (
	"net/http"
	"os"
	"regexp"
	"testing"
)

// The curl examples of docs/intake.md and the NDJSON file they post are
// accepted whole, so the documentation cannot drift from the API.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/intake.md")
	if err != nil {
		t.Fatal(err)
	}
	bodies := regexp.MustCompile(`(?s)-d '([^']*)'`).FindAllSubmatch(doc, -1)
	if len(bodies) != 2 {
		t.Fatalf("docs/intake.md has %d curl -d bodies; want the object and the array", len(bodies))
	}
	file, err := os.ReadFile("../../examples/conversions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Config{}, false)
	for _, tt := range []struct {
		name, contentType string
		body              []byte
		want              int
	}{
		{"object", "application/json", bodies[0][1], 1},
		{"array", "application/json", bodies[1][1], 2},
		{"ndjson file", "application/x-ndjson", file, 5},
	} {
		r := e.post(tt.body, tt.contentType)
		if r.Status != http.StatusAccepted || r.Accepted != tt.want || len(r.Invalid) != 0 {
			t.Errorf("%s: POST = %d %s; want 202 with %d accepted", tt.name, r.Status, r.Raw, tt.want)
		}
	}
}
