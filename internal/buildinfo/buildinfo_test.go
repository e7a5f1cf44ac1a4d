package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestFrom(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "8f5cfa1a2b3c4d5e6f"}, {Key: "vcs.modified", Value: "true"}}}
	if got := from(bi); got != (Info{Version: "v1.2.3", Commit: "8f5cfa1a2b3c+dirty", Go: "go1.26"}) {
		t.Errorf("from = %+v", got)
	}
	if got := from(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}); got.Version != "devel" || got.Commit != "unknown" {
		t.Errorf("from(devel) = %+v", got)
	}
}

func TestLineAskedRegister(t *testing.T) {
	if l := Line("sender"); !strings.HasPrefix(l, "sender ") || !strings.Contains(l, "commit ") {
		t.Errorf("Line = %q", l)
	}
	for args, want := range map[string]bool{"-version": true, "--version": true, "version": true, "-h": false, "": false} {
		if got := Asked(strings.Fields(args)); got != want {
			t.Errorf("Asked(%q) = %v", args, got)
		}
	}
	reg := prometheus.NewRegistry()
	if err := Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := Register(reg); err != nil {
		t.Errorf("second Register = %v; want nil", err)
	}
	if n, err := testutil.GatherAndCount(reg, "build_info"); err != nil || n != 1 {
		t.Errorf("build_info series = %d, %v; want 1", n, err)
	}
}
