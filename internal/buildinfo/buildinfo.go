// Package buildinfo says which build a binary is: the module version and
// the VCS commit Go stamps into it (runtime/debug.ReadBuildInfo), for
// every binary's -version and the build_info metric.
package buildinfo

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Info is what a build says about itself.
type Info struct {
	Version string // module version: a tag, a pseudo-version, or "devel"
	Commit  string // vcs.revision (12 characters), "+dirty" when modified; "unknown" without VCS stamps
	Go      string // the Go version it was built with
}

// Read returns the running binary's build info.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "unknown", Commit: "unknown", Go: runtime.Version()}
	}
	return from(bi)
}

func from(bi *debug.BuildInfo) Info {
	in := Info{Version: bi.Main.Version, Commit: "unknown", Go: bi.GoVersion}
	if in.Version == "" || in.Version == "(devel)" {
		in.Version = "devel"
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		in.Commit = rev[:min(12, len(rev))]
		if dirty {
			in.Commit += "+dirty"
		}
	}
	return in
}

// Line is the -version answer of the binary name.
func Line(name string) string {
	in := Read()
	return fmt.Sprintf("%s %s (commit %s, %s)", name, in.Version, in.Commit, in.Go)
}

// Asked reports whether args ask for the version: -version or --version
// (or "version") as the first argument.
func Asked(args []string) bool {
	return len(args) > 0 && (args[0] == "-version" || args[0] == "--version" || args[0] == "version")
}

// Register adds the gauge build_info{version,commit,goversion} = 1 to reg.
// Registered twice on one registry (all-in-one runs ingest and sender), it
// is kept once.
func Register(reg prometheus.Registerer) error {
	in := Read()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "build_info",
		Help: "The build running: module version, VCS commit and Go version (always 1).",
	}, []string{"version", "commit", "goversion"})
	g.WithLabelValues(in.Version, in.Commit, in.Go).Set(1)
	if err := reg.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return nil
		}
		return err
	}
	return nil
}
