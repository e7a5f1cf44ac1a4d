package capi

import (
	"net/http"
	"testing"
	"time"
)

func TestParseUsage(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   Usage
	}{
		{"none", nil, Usage{}},
		{"app usage sample", map[string]string{"X-App-Usage": `{"call_count":28,"total_time":25,"total_cputime":25}`},
			Usage{MaxPercent: 28}},
		{"app cpu highest", map[string]string{"X-App-Usage": `{"call_count":5,"total_time":12,"total_cputime":99}`},
			Usage{MaxPercent: 99}},
		{"buc sample from docs", map[string]string{"X-Business-Use-Case-Usage": `{"66782684":[{"type":"ads_management","call_count":95,"total_cputime":20,"total_time":20,"estimated_time_to_regain_access":0,"ads_api_access_tier":"development_access"}],"10153848260347724":[{"type":"pages","call_count":100,"total_cputime":23,"total_time":23,"estimated_time_to_regain_access":19}]}`},
			Usage{MaxPercent: 100, RetryAfter: 19 * time.Minute}},
		{"ad account", map[string]string{"X-Ad-Account-Usage": `{"acc_id_util_pct":9.67,"reset_time_duration":100,"ads_api_access_tier":"standard_access"}`},
			Usage{MaxPercent: 10}},
		{"ad account exhausted", map[string]string{"X-Ad-Account-Usage": `{"acc_id_util_pct":100,"reset_time_duration":100}`},
			Usage{MaxPercent: 100, RetryAfter: 100 * time.Second}},
		{"highest of all headers", map[string]string{
			"X-App-Usage":               `{"call_count":40}`,
			"X-Business-Use-Case-Usage": `{"1":[{"call_count":70,"estimated_time_to_regain_access":1}],"2":[{"total_time":85}]}`},
			Usage{MaxPercent: 85, RetryAfter: time.Minute}},
		{"retry-after fallback", map[string]string{"Retry-After": "7"}, Usage{RetryAfter: 7 * time.Second}},
		{"regain wins over retry-after", map[string]string{"Retry-After": "7",
			"X-Business-Use-Case-Usage": `{"1":[{"estimated_time_to_regain_access":3}]}`}, Usage{RetryAfter: 3 * time.Minute}},
		{"malformed ignored", map[string]string{"X-App-Usage": `{call_count:`, "X-Business-Use-Case-Usage": `[]`, "Retry-After": "soon"},
			Usage{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if got := parseUsage(h); got != tt.want {
				t.Errorf("parseUsage(%v) = %+v; want %+v", tt.header, got, tt.want)
			}
		})
	}
}

func TestUsageThrottled(t *testing.T) {
	tests := []struct {
		u    Usage
		want bool
	}{
		{Usage{}, false},
		{Usage{MaxPercent: 99}, false},
		{Usage{MaxPercent: 100}, true},
		{Usage{RetryAfter: time.Second}, true},
	}
	for _, tt := range tests {
		if got := tt.u.Throttled(); got != tt.want {
			t.Errorf("%+v.Throttled() = %v; want %v", tt.u, got, tt.want)
		}
	}
}
