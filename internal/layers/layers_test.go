// Package layers holds the test of who may import whom
// (docs/architecture.md): it fails when a package reaches into a layer
// above its own.
package layers

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ctmpipe/ctmpipe/"

// deps lists the project packages pattern's packages depend on (tests
// excluded), by package.
func deps(t *testing.T, pattern string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, pattern).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pattern, err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, d := range f[1:] {
			if strings.HasPrefix(d, module) {
				m[f[0]] = append(m[f[0]], strings.TrimPrefix(d, module))
			}
		}
	}
	return m
}

// The webhook receiver knows webhooks: the admin listener's services are
// composed around it by internal/services, not imported by it.
func TestIngestKnowsWebhooksOnly(t *testing.T) {
	forbidden := []string{"internal/sender", "internal/opsapi", "internal/registryapi", "internal/console",
		"internal/intake", "internal/forward", "internal/autoevents", "internal/services"}
	all := deps(t, "../../internal/ingest")
	if ds := all[module+"internal/ingest"]; !strings.Contains(strings.Join(ds, " "), "pkg/webhook") {
		t.Fatalf("ingest's dependencies %v lack pkg/webhook: the listing is broken", ds)
	}
	for pkg, ds := range all {
		for _, d := range ds {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s depends on %s", pkg, d)
				}
			}
		}
	}
}

// pkg/ is the bottom layer, the part other programs may import: none of it
// depends on internal/.
func TestPkgIsTheLeaf(t *testing.T) {
	for pkg, ds := range deps(t, "../../pkg/...") {
		for _, d := range ds {
			if strings.HasPrefix(d, "internal/") {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}
