package fakegraph

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Meta's Marketing API versions and the day each stops working, from
// "Marketing API version history"
// (https://developers.facebook.com/documentation/ads-commerce/marketing-api/marketing-api-changelog/versions),
// read on 2026-12-07. The Conversions API is a Marketing API endpoint, so
// these dates, not Graph API's, decide. Versions without a date ("TBD") are
// not listed: they work. Written apart from pkg/capi's table on purpose.
var expiries = map[int]string{
	25: "2027-02-23", 24: "2026-11-10", 23: "2026-06-09", 22: "2026-02-19",
	21: "2025-09-09", 20: "2025-05-06", 19: "2025-02-04", 18: "2024-08-13",
	17: "2024-05-14", 16: "2024-02-06",
}

// NewestVersion is the newest Marketing API version of the table above.
const NewestVersion = "v27.0"

// oldestListed is the oldest version with a date above; older ones are long expired.
const oldestListed = 16

// expired reports whether version (vN.N) no longer works at now, and the
// version Meta would answer in its place.
func expired(version string, now time.Time) (bool, string) {
	major, err := strconv.Atoi(strings.TrimPrefix(strings.SplitN(version, ".", 2)[0], "v"))
	if err != nil {
		return false, ""
	}
	if major < oldestListed {
		return true, nextWorking(oldestListed, now)
	}
	date, ok := expiries[major]
	if !ok {
		return false, ""
	}
	end, _ := time.Parse(time.DateOnly, date)
	if now.Before(end) {
		return false, ""
	}
	return true, nextWorking(major+1, now)
}

// nextWorking is the first version from major on that works at now.
func nextWorking(major int, now time.Time) string {
	for ; ; major++ {
		v := fmt.Sprintf("v%d.0", major)
		if ok, _ := expired(v, now); !ok {
			return v
		}
	}
}

// checkVersion answers a call to an expired version as Meta does ("Upcoming
// change in Marketing API version deprecation to enable version
// auto-upgrade", Meta for Developers, April 2024): with auto-upgrade off,
// HTTP 400 and error code 2635 "(#2635) You are calling a deprecated version
// of the Ads API. Please update to the latest version: vNN.0"; with it on,
// the call is served as the next working version and the answer carries an
// X-Ad-Api-Version-Warning header. It reports whether the call may go on.
func (s *Server) checkVersion(w http.ResponseWriter, version string) bool {
	old, next := expired(version, s.opts.Now())
	if !old {
		return true
	}
	s.mu.Lock()
	upgrade := s.autoUpgrade
	s.mu.Unlock()
	if upgrade {
		s.versionWarnings.Add(1)
		w.Header().Set("X-Ad-Api-Version-Warning", fmt.Sprintf(
			"The call has been auto-upgraded to %s as %s is deprecated.", next, version))
		return true
	}
	s.writeError(w, http.StatusBadRequest, graphError{Type: "OAuthException", Code: 2635,
		Message: "(#2635) You are calling a deprecated version of the Ads API. Please update to the latest version: " + NewestVersion + "."})
	return false
}

// SetAutoUpgrade turns the app's "Ads API version auto-upgrade" on or off
// (Options.AutoUpgrade).
func (s *Server) SetAutoUpgrade(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.autoUpgrade = on
}

// VersionWarnings is how many answers carried X-Ad-Api-Version-Warning.
func (s *Server) VersionWarnings() int64 { return s.versionWarnings.Load() }
