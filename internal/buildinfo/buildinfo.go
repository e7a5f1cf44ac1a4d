// Package buildinfo says which build a binary is: version, VCS commit, build
// date and Go version, for every binary's -version and the build_info
// metric. The linker's -X flags (the documented build command and the
// Dockerfile) win; without them the module version and the VCS stamps Go
// writes into a binary built inside a checkout (runtime/debug.ReadBuildInfo,
// -buildvcs) are used. A Docker build has no .git (.dockerignore drops it),
// so there only -X can say which commit it is.
package buildinfo

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Package is this package's import path, the prefix of the -X flags:
//
//	go build -ldflags "-X $Package.version=v1.2.3 -X $Package.commit=$(git rev-parse HEAD) -X $Package.date=$(date -u +%FT%TZ)"
const Package = "github.com/ctmpipe/ctmpipe/internal/buildinfo"

// Set by the linker (-ldflags -X), never by code: package-level because
// that is the only place -X can write to (an exception to "no package
// state", STYLE 3.3).
var version, commit, date string

// Info is what a build says about itself.
type Info struct {
	Version string // a tag, a pseudo-version, or "devel"
	Commit  string // the VCS commit (12 characters from VCS stamps, "+dirty" when modified); "unknown" without one
	Date    string // build date (RFC 3339) from -X, else the commit's time from VCS stamps; "unknown" without either
	Go      string // the Go version it was built with
}

// Read returns the running binary's build info.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{GoVersion: runtime.Version()}
	}
	return stamped(from(bi), version, commit, date)
}

// stamped lays the linker's values over in.
func stamped(in Info, version, commit, date string) Info {
	if version != "" {
		in.Version = version
	}
	if commit != "" {
		in.Commit = commit
	}
	if date != "" {
		in.Date = date
	}
	return in
}

func from(bi *debug.BuildInfo) Info {
	in := Info{Version: bi.Main.Version, Commit: "unknown", Date: "unknown", Go: bi.GoVersion}
	if in.Version == "" || in.Version == "(devel)" {
		in.Version = "devel"
	}
	if in.Go == "" {
		in.Go = runtime.Version()
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		case "vcs.time":
			in.Date = s.Value
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
	return fmt.Sprintf("%s %s (commit %s, built %s, %s)", name, in.Version, in.Commit, in.Date, in.Go)
}

// Asked reports whether args ask for the version: -version or --version
// (or "version") as the first argument.
func Asked(args []string) bool {
	return len(args) > 0 && (args[0] == "-version" || args[0] == "--version" || args[0] == "version")
}

// Register adds the gauge build_info{version,commit,build_date,goversion} =
// 1 to reg. Registered twice on one registry (all-in-one runs ingest and
// sender), it is kept once.
func Register(reg prometheus.Registerer) error {
	in := Read()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "build_info",
		Help: "The build running: version, VCS commit, build date and Go version (always 1).",
	}, []string{"version", "commit", "build_date", "goversion"})
	g.WithLabelValues(in.Version, in.Commit, in.Date, in.Go).Set(1)
	if err := reg.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return nil
		}
		return err
	}
	return nil
}
