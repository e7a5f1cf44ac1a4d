package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/services"
	"github.com/ctmpipe/ctmpipe/internal/settings"
)

var update = flag.Bool("update", false, "rewrite the README's settings tables from the binaries' settings")

// The README's settings tables are generated from the binaries' settings
// (the same list -help prints), between <!-- settings NAME --> and
// <!-- /settings --> markers: this fails when they differ. To rewrite them:
//
//	go test ./cmd/all-in-one -run TestREADMESettingsTables -update
func TestREADMESettingsTables(t *testing.T) {
	const path = "../../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string][]settings.Setting{
		"ingest":     services.IngestSettings(),
		"sender":     sender.Settings(),
		"all-in-one": ownSettings,
	}
	readme := string(b)
	for name, defs := range tables {
		re := regexp.MustCompile(`(?s)(<!-- settings ` + regexp.QuoteMeta(name) + ` -->\n).*?(<!-- /settings -->)`)
		if !re.MatchString(readme) {
			t.Errorf("README.md has no <!-- settings %s --> block", name)
			continue
		}
		want := settings.MarkdownTable(defs)
		got := re.FindStringSubmatch(readme)[0]
		if strings.Contains(got, "\n"+want) {
			continue
		}
		if *update {
			readme = re.ReplaceAllLiteralString(readme, "<!-- settings "+name+" -->\n"+want+"<!-- /settings -->")
			continue
		}
		t.Errorf("README.md's %s settings differ from the binary's; run go test ./cmd/all-in-one -run TestREADMESettingsTables -update", name)
	}
	if *update {
		if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
