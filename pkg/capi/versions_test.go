package capi

import (
	"strings"
	"testing"
	"time"
)

func TestParseVersion(t *testing.T) {
	for _, ok := range []string{"v27.0", "v9.0", "v100.0"} {
		if _, err := ParseVersion(ok); err != nil {
			t.Errorf("ParseVersion(%q) = %v; want ok", ok, err)
		}
	}
	for _, bad := range []string{"", "27.0", "v27", "v27.1", "V27.0", "latest", "v027.0", "v27.0 ", "v1000.0"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) = nil; want an error", bad)
		} else if !strings.Contains(err.Error(), DefaultVersion) && bad != "v1000.0" {
			t.Errorf("ParseVersion(%q) = %v; want the newest version named", bad, err)
		}
	}
}

func TestVersionStatus(t *testing.T) {
	at := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	tests := []struct {
		version, date string
		want          VersionState
		says          string
	}{
		{"v24.0", "2026-08-11", VersionCurrent, "until 2026-11-10"},
		{"v24.0", "2026-08-12", VersionExpiring, "expires on 2026-11-10"},
		{"v24.0", "2026-11-09", VersionExpiring, "1 days left"},
		{"v24.0", "2026-11-10", VersionExpired, "2635"},
		{"v24.0", "2026-12-07", VersionExpired, "GRAPH_API_VERSION=" + DefaultVersion},
		{"v25.0", "2026-12-07", VersionExpiring, "2027-02-23"},
		{"v26.0", "2026-12-07", VersionCurrent, "no expiration date"},
		{"v27.0", "2026-12-07", VersionCurrent, ""},
		{"v12.0", "2026-12-07", VersionExpired, "long ago"},
		{"v99.0", "2026-12-07", VersionUnknown, "newer than this build"},
	}
	for _, tt := range tests {
		got, _, msg := VersionStatus(tt.version, at(tt.date))
		if got != tt.want || !strings.Contains(msg, tt.says) {
			t.Errorf("VersionStatus(%s, %s) = %v %q; want %v saying %q", tt.version, tt.date, got, msg, tt.want, tt.says)
		}
		if !strings.Contains(msg, "GRAPH_API_VERSION") {
			t.Errorf("VersionStatus(%s, %s) = %q; want the setting named", tt.version, tt.date, msg)
		}
	}
}

// The default is the newest version and has not expired today: a build
// whose default Meta refuses must not pass its tests.
func TestDefaultVersionCurrent(t *testing.T) {
	if DefaultVersion != Versions[0].Name {
		t.Errorf("DefaultVersion = %s; want the newest, %s", DefaultVersion, Versions[0].Name)
	}
	if st, _, msg := VersionStatus(DefaultVersion, time.Now()); st == VersionExpired {
		t.Errorf("the default version has expired: %s", msg)
	}
	for i := 1; i < len(Versions); i++ {
		a, b := Versions[i-1], Versions[i]
		if !a.Released.After(b.Released) || !b.Expires.IsZero() && !a.Expires.IsZero() && !a.Expires.After(b.Expires) {
			t.Errorf("Versions not newest first at %s, %s", a.Name, b.Name)
		}
	}
}
