package conversion

import (
	"github.com/valyala/fastjson"
)

// checkLengths checks the required fields are there and every field is
// within its limit.
func (c *Conversion) checkLengths() error {
	for _, f := range [...]struct {
		name, v string
		max     int
	}{
		{"event_id", c.EventID, MaxEventIDLen},
		{"event_name", c.EventName, 64},
		{"channel", c.Channel, 16},
		{"business_id", c.BusinessID, MaxBusinessIDLen},
		{"user_id", c.UserID, MaxUserIDLen},
	} {
		switch {
		case f.v == "" && f.name == "user_id" && c.CtwaClid != "":
			// A conversion that names its click needs no user to find it.
		case f.v == "":
			return invalid(f.name, "empty")
		case len(f.v) > f.max:
			return invalid(f.name, "too long")
		}
	}
	if len(c.DatasetID) > MaxDatasetIDLen {
		return invalid("dataset_id", "too long")
	}
	if len(c.CtwaClid) > MaxClickIDLen {
		return invalid("ctwa_clid", "too long")
	}
	return nil
}

// check applies the rules on the values, with cd the parsed custom_data
// (nil when absent).
func (c *Conversion) check(cd *fastjson.Value) error {
	const idChars = "must be printable ASCII without ':', '{' or '}'"
	switch {
	case hasControl(c.EventID):
		return invalid("event_id", "must not contain control characters")
	case !IsEventName(c.EventName):
		return errEventName
	case !IsChannel(c.Channel):
		return errChannel
	case !plainID(c.BusinessID):
		return invalid("business_id", idChars)
	case !plainID(c.UserID):
		return invalid("user_id", idChars)
	case c.DatasetID != "" && !plainID(c.DatasetID):
		return invalid("dataset_id", idChars)
	case c.CtwaClid != "" && c.Channel != WhatsApp:
		return invalid("ctwa_clid", "only on channel whatsapp")
	case !plainID(c.CtwaClid):
		return invalid("ctwa_clid", idChars)
	case c.EventTime < 0 || c.EventTime > MaxEventTime:
		return invalid("event_time", "must be unix seconds (not milliseconds)")
	}
	if cd != nil && cd.Type() != fastjson.TypeObject {
		return invalid("custom_data", "must be a JSON object")
	}
	if c.EventName == Purchase {
		if cd == nil {
			return invalid("custom_data", "Purchase needs currency and value")
		}
		cur := cd.GetStringBytes("currency")
		if len(cur) != 3 || !letters(cur) {
			return invalid("custom_data.currency", "Purchase needs a three-letter currency code")
		}
		if v := cd.Get("value"); v == nil || v.Type() != fastjson.TypeNumber {
			return invalid("custom_data.value", "Purchase needs a numeric value")
		}
	}
	return c.checkDataProcessing()
}

// checkDataProcessing applies Meta's rules for Limited Data Use ("Data
// Processing Options for US Users"): options [] or ["LDU"]; with LDU a
// country and a state, both or neither: 1 and 1000 (US, California), 1 and
// 0, or 0 and 0 (Meta geolocates the event). Without LDU there is nothing
// for a location to qualify, so one given anyway is a publisher's mistake.
func (c *Conversion) checkDataProcessing() error {
	const (
		opts    = "data_processing_options"
		country = "data_processing_options_country"
		state   = "data_processing_options_state"
	)
	dpo := c.DataProcessingOptions
	if len(dpo) > 1 || (len(dpo) == 1 && dpo[0] != LDU) {
		return invalid(opts, `must be [] or ["LDU"]`)
	}
	co, st := c.DataProcessingOptionsCountry, c.DataProcessingOptionsState
	switch {
	case co == nil && st == nil:
		return nil
	case len(dpo) == 0 && co != nil:
		return invalid(country, `only with data_processing_options ["LDU"]`)
	case len(dpo) == 0:
		return invalid(state, `only with data_processing_options ["LDU"]`)
	case co == nil:
		return invalid(country, "required with "+state)
	case st == nil:
		return invalid(state, "required with "+country)
	case *co != CountryGeolocate && *co != CountryUS:
		return invalid(country, "must be 0 (Meta geolocates) or 1 (United States)")
	case *st != StateGeolocate && *st != StateCalifornia:
		return invalid(state, "must be 0 (Meta geolocates) or 1000 (California)")
	case *st == StateCalifornia && *co != CountryUS:
		return invalid(state, "1000 (California) needs "+country+" 1")
	}
	return nil
}

func letters(b []byte) bool {
	for _, c := range b {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// plainID matches the ids the attribution store can key: printable ASCII
// without ':' (key separator) or braces (Redis Cluster hash tags).
func plainID(id string) bool {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == ':' || c == '{' || c == '}' {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}
