package capi

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"
)

// The Conversions API is a Marketing API endpoint, so a Graph API version is
// good for it only as long as the Marketing API supports that version, which
// is about a year, not Graph API's two. Meta's "Marketing API version
// history" table
// (https://developers.facebook.com/documentation/ads-commerce/marketing-api/marketing-api-changelog/versions)
// gives each version's release and expiration date; "Versioning"
// (https://developers.facebook.com/documentation/ads-commerce/marketing-api/overview/versioning)
// says a version is supported at least 90 days after its successor is
// released, and that a call to an expired version "may fail or be upgraded
// to the next available version": it fails with code 2635 ("You are calling
// a deprecated version of the Ads API. Please update to the latest version"),
// or, where the endpoint did not change, it is answered as the next version
// with an X-Ad-Api-Version-Warning header (Meta's "Upcoming change in
// Marketing API version deprecation to enable version auto-upgrade", April
// 2024). The table below is that page on 2026-12-07; update it when Meta
// publishes a date.

// Version is one Marketing API version of Meta's table.
type Version struct {
	Name     string    // "v25.0"
	Released time.Time // release date
	Expires  time.Time // expiration date; zero while Meta says "TBD"
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// Versions is Meta's table of Marketing API versions, newest first.
var Versions = []Version{
	{"v27.0", day(2026, time.November, 4), time.Time{}},
	{"v26.0", day(2026, time.July, 29), time.Time{}},
	{"v25.0", day(2026, time.February, 18), day(2027, time.February, 23)},
	{"v24.0", day(2025, time.October, 8), day(2026, time.November, 10)},
	{"v23.0", day(2025, time.May, 29), day(2026, time.June, 9)},
	{"v22.0", day(2025, time.January, 21), day(2026, time.February, 19)},
	{"v21.0", day(2024, time.October, 2), day(2025, time.September, 9)},
	{"v20.0", day(2024, time.May, 21), day(2025, time.May, 6)},
	{"v19.0", day(2024, time.January, 23), day(2025, time.February, 4)},
	{"v18.0", day(2023, time.September, 12), day(2024, time.August, 13)},
	{"v17.0", day(2023, time.May, 23), day(2024, time.May, 14)},
	{"v16.0", day(2023, time.February, 2), day(2024, time.February, 6)},
}

// DefaultVersion is the newest Marketing API version this build knows.
var DefaultVersion = Versions[0].Name

// VersionWarnWithin is how long before a version expires the binaries warn.
const VersionWarnWithin = 90 * 24 * time.Hour

// CodeDeprecatedVersion is Meta's error code for a call to an expired
// Marketing API version.
const CodeDeprecatedVersion = 2635

// HeaderVersionWarning is the header of an answer Meta auto-upgraded.
const HeaderVersionWarning = "X-Ad-Api-Version-Warning"

var versionRE = regexp.MustCompile(`^v([1-9][0-9]*)\.0$`)

// ParseVersion checks that s is a version as Meta names them (vNN.0) and
// returns its major number.
func ParseVersion(s string) (int, error) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("graph api version %q is not of the form vNN.0 (the newest is %s)", s, DefaultVersion)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n > 999 {
		return 0, fmt.Errorf("graph api version %q is out of range", s)
	}
	return n, nil
}

// VersionState is what Meta's table says of a version on a day.
type VersionState int

// The states of a version.
const (
	VersionCurrent  VersionState = iota // supported, no expiry within VersionWarnWithin
	VersionExpiring                     // expires within VersionWarnWithin
	VersionExpired                      // past its expiration date (or older than the table)
	VersionUnknown                      // newer than the table: released after this build
)

func (s VersionState) String() string {
	return [...]string{"current", "expiring", "expired", "unknown"}[s]
}

// VersionStatus says what Meta's table means for version v at now: its
// state, its expiry (zero when none is known) and a sentence for an
// operator that names GRAPH_API_VERSION and the newest version. v must be
// well formed (ParseVersion).
func VersionStatus(v string, now time.Time) (VersionState, time.Time, string) {
	n, err := ParseVersion(v)
	if err != nil {
		return VersionExpired, time.Time{}, err.Error()
	}
	for _, ver := range Versions {
		if ver.Name != v {
			continue
		}
		switch {
		case ver.Expires.IsZero():
			return VersionCurrent, ver.Expires, fmt.Sprintf("GRAPH_API_VERSION %s is supported (no expiration date announced yet)", v)
		case !now.Before(ver.Expires):
			return VersionExpired, ver.Expires, fmt.Sprintf("GRAPH_API_VERSION %s expired on %s: Meta refuses it (code 2635) "+
				"or upgrades it on its own; set GRAPH_API_VERSION=%s and restart", v, ver.Expires.Format(time.DateOnly), DefaultVersion)
		case ver.Expires.Sub(now) <= VersionWarnWithin:
			days := int(math.Ceil(ver.Expires.Sub(now).Hours() / 24))
			return VersionExpiring, ver.Expires, fmt.Sprintf("GRAPH_API_VERSION %s expires on %s (%d days left): "+
				"set GRAPH_API_VERSION=%s before then", v, ver.Expires.Format(time.DateOnly), days, DefaultVersion)
		}
		return VersionCurrent, ver.Expires, fmt.Sprintf("GRAPH_API_VERSION %s is supported until %s", v, ver.Expires.Format(time.DateOnly))
	}
	newest, _ := ParseVersion(DefaultVersion)
	if n > newest {
		return VersionUnknown, time.Time{}, fmt.Sprintf("GRAPH_API_VERSION %s is newer than this build's table (newest %s): "+
			"its expiry is not known here", v, DefaultVersion)
	}
	return VersionExpired, time.Time{}, fmt.Sprintf("GRAPH_API_VERSION %s expired long ago: set GRAPH_API_VERSION=%s and restart", v, DefaultVersion)
}
