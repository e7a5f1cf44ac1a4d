package registryapi

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// changes says what a PUT changed, for the audit log: each field's old and
// new value, except the secrets, which are named only ("access_token
// changed"). old and oldErr are the record before the PUT.
func changes(old registry.Business, oldErr error, b registry.Business) []string {
	switch {
	case errors.Is(oldErr, registry.ErrNotFound):
		out := []string{"created", "channel: " + string(b.Channel), "dataset_id: " + b.DatasetID, fmt.Sprintf("enabled: %t", b.Enabled)}
		for _, s := range []struct {
			name string
			v    registry.Secret
		}{{"access_token", b.AccessToken}, {"app_secret", b.AppSecret}} {
			if s.v.IsSet() {
				out = append(out, s.name+" set")
			}
		}
		return out
	case oldErr != nil:
		return []string{"replaced a record that could not be read (its fields are not compared)"}
	}
	var out []string
	diff := func(name, from, to string) {
		if from != to {
			out = append(out, name+": "+orNone(from)+" -> "+orNone(to))
		}
	}
	diff("channel", string(old.Channel), string(b.Channel))
	diff("dataset_id", old.DatasetID, b.DatasetID)
	diff("test_event_code", old.TestEventCode, b.TestEventCode)
	diff("phone_number_ids", strings.Join(old.PhoneNumberIDs, ","), strings.Join(b.PhoneNumberIDs, ","))
	diff("require_referral", boolPtr(old.RequireReferral), boolPtr(b.RequireReferral))
	diff("automatic_events", fmt.Sprint(old.AutomaticEvents), fmt.Sprint(b.AutomaticEvents))
	diff("attribution", string(old.Attribution), string(b.Attribution))
	diff("enabled", fmt.Sprint(old.Enabled), fmt.Sprint(b.Enabled))
	diff("partner_agent", old.PartnerAgent, b.PartnerAgent)
	secret("access_token", old.AccessToken, b.AccessToken, &out)
	secret("app_secret", old.AppSecret, b.AppSecret, &out)
	if len(out) == 0 {
		out = []string{"no change"}
	}
	return out
}

// secret names a secret's change without its value.
func secret(name string, from, to registry.Secret, out *[]string) {
	switch {
	case !from.IsSet() && to.IsSet():
		*out = append(*out, name+" set")
	case from.IsSet() && !to.IsSet():
		*out = append(*out, name+" unset")
	case from.IsSet() && from.Reveal() != to.Reveal():
		*out = append(*out, name+" changed")
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func boolPtr(b *bool) string {
	if b == nil {
		return ""
	}
	return fmt.Sprint(*b)
}
