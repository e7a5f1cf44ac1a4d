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
	bi.Settings = append(bi.Settings, debug.BuildSetting{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"})
	if got := from(bi); got != (Info{Version: "v1.2.3", Commit: "8f5cfa1a2b3c+dirty", Date: "2026-01-02T03:04:05Z", Go: "go1.26"}) {
		t.Errorf("from = %+v", got)
	}
	if got := from(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}); got.Version != "devel" || got.Commit != "unknown" || got.Date != "unknown" {
		t.Errorf("from(devel) = %+v", got)
	}
}

// TestStamped: the linker's -X values win over the VCS stamps, and an
// unset one leaves them.
func TestStamped(t *testing.T) {
	in := Info{Version: "devel", Commit: "8f5cfa1a2b3c", Date: "2026-01-02T03:04:05Z", Go: "go1.26"}
	if got := stamped(in, "v2.0.0", "abcdef", "2027-01-01T00:00:00Z"); got != (Info{"v2.0.0", "abcdef", "2027-01-01T00:00:00Z", "go1.26"}) {
		t.Errorf("stamped = %+v", got)
	}
	if got := stamped(in, "", "", ""); got != in {
		t.Errorf("stamped with nothing = %+v; want %+v", got, in)
	}
}

func TestLineAskedRegister(t *testing.T) {
	if l := Line("sender"); !strings.HasPrefix(l, "sender ") || !strings.Contains(l, "commit ") || !strings.Contains(l, "built ") {
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
