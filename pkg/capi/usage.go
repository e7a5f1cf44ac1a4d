package capi

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Usage is what Meta's rate-limit headers say about how close the caller is to
// being throttled ("Rate Limits", Graph API overview):
//   - X-App-Usage: {"call_count","total_cputime","total_time"}, whole-number
//     percentages of the app's rolling-hour allowance; at 100 calls may be
//     throttled (Platform Rate Limits).
//   - X-Business-Use-Case-Usage: {"<business-object-id>": [{"type",
//     "call_count","total_cputime","total_time","estimated_time_to_regain_access"}]},
//     the same percentages per business use case, and "Time, in minutes, until
//     calls will not longer be throttled" (BUC Rate Limits).
//   - X-Ad-Account-Usage: {"acc_id_util_pct","reset_time_duration"}; the
//     Conversions API counts as Marketing API calls (Using the API, API Limits),
//     so ad-account usage may appear too.
//
// A caller slows down a business when MaxPercent nears 100 and waits at least
// RetryAfter before calling again. Malformed headers are ignored: usage is
// advice, never a reason to fail a request.
type Usage struct {
	MaxPercent int           // highest percentage any usage header reported; 0 when none
	RetryAfter time.Duration // longest estimated_time_to_regain_access, else Retry-After
}

// Throttled reports whether Meta says calls are (about to be) refused.
func (u Usage) Throttled() bool { return u.MaxPercent >= 100 || u.RetryAfter > 0 }

type usageCounts struct {
	CallCount    float64 `json:"call_count"`
	TotalCPUTime float64 `json:"total_cputime"`
	TotalTime    float64 `json:"total_time"`
	RegainAccess float64 `json:"estimated_time_to_regain_access"` // minutes (BUC only)
	AccIDUtilPct float64 `json:"acc_id_util_pct"`                 // X-Ad-Account-Usage
	ResetSeconds float64 `json:"reset_time_duration"`             // X-Ad-Account-Usage, seconds
}

func (c usageCounts) maxPercent() float64 {
	return max(c.CallCount, c.TotalCPUTime, c.TotalTime, c.AccIDUtilPct)
}

func parseUsage(h http.Header) Usage {
	var pct float64
	var wait time.Duration
	note := func(c usageCounts) {
		pct = max(pct, c.maxPercent())
		if c.RegainAccess > 0 {
			wait = max(wait, time.Duration(c.RegainAccess*float64(time.Minute)))
		}
	}
	for _, name := range []string{"X-App-Usage", "X-Ad-Account-Usage"} {
		var c usageCounts
		if v := h.Get(name); v != "" && json.Unmarshal([]byte(v), &c) == nil {
			note(c)
			if c.ResetSeconds > 0 && c.AccIDUtilPct >= 100 {
				wait = max(wait, time.Duration(c.ResetSeconds*float64(time.Second)))
			}
		}
	}
	var buc map[string][]usageCounts
	if v := h.Get("X-Business-Use-Case-Usage"); v != "" && json.Unmarshal([]byte(v), &buc) == nil {
		for _, entries := range buc {
			for _, c := range entries {
				note(c)
			}
		}
	}
	if wait == 0 {
		wait = retryAfterHeader(h.Get("Retry-After"))
	}
	return Usage{MaxPercent: int(math.Ceil(min(pct, 1000))), RetryAfter: wait}
}

// retryAfterHeader reads an HTTP Retry-After in seconds. Meta does not document
// it; proxies and load balancers in front of a Graph base URL may send it.
func retryAfterHeader(v string) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || secs <= 0 {
		return 0
	}
	return time.Duration(min(secs, 24*3600)) * time.Second
}
