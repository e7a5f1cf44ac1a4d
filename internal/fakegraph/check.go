package fakegraph

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// Limits on event_time. Meta: "The event_time can be up to 7 days before you
// send an event to Meta" (Using the API). Meta documents no future allowance;
// the fake tolerates a minute of clock skew.
const (
	maxAge    = 7 * 24 * time.Hour
	maxFuture = time.Minute
)

// eventNames is the onboarding guide's FAQ list of business messaging events.
var eventNames = map[string]bool{
	"Purchase": true, "LeadSubmitted": true, "InitiateCheckout": true,
	"AddToCart": true, "ViewContent": true, "OrderCreated": true,
	"OrderShipped": true, "OrderDelivered": true, "OrderCanceled": true,
	"OrderReturned": true, "CartAbandoned": true, "QualifiedLead": true,
	"RatingProvided": true, "ReviewProvided": true,
}

// channelIDs are the user_data fields each channel needs (the onboarding
// guide's sample call per channel).
var channelIDs = map[string][2]string{
	"whatsapp":  {"whatsapp_business_account_id", "ctwa_clid"},
	"messenger": {"page_id", "page_scoped_user_id"},
	"instagram": {"instagram_business_account_id", "ig_sid"},
}

type checked struct {
	Event
	badName bool // event_name not allowed (Meta adds a subcode for it)
}

// checkEvent validates one event object at time now. problem is "" when the
// event is valid; else it names the field, never its value.
func checkEvent(raw json.RawMessage, now time.Time) (c checked, problem string) {
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ev); err != nil || ev == nil {
		return c, "event is not a JSON object"
	}
	c.Raw = append(json.RawMessage(nil), raw...)
	if _, ok := ev["event_id"]; ok && !jsonString(ev["event_id"], &c.EventID) {
		return c, "event_id must be a string"
	}
	if !jsonString(ev["event_name"], &c.EventName) || !eventNames[c.EventName] {
		c.badName = true
		return c, "event_name is not a supported business messaging event"
	}
	t, ok := jsonInt(ev["event_time"])
	if !ok {
		return c, "event_time must be an integer Unix time in seconds"
	}
	c.EventTime = t
	switch at := time.Unix(t, 0); {
	case now.Sub(at) > maxAge:
		return c, "event_time is more than 7 days in the past"
	case at.Sub(now) > maxFuture:
		return c, "event_time is in the future"
	}
	var source string
	if !jsonString(ev["action_source"], &source) || source != "business_messaging" {
		return c, "action_source must be business_messaging"
	}
	var ids [2]string
	if ok = jsonString(ev["messaging_channel"], &c.Channel); ok {
		ids, ok = channelIDs[c.Channel]
	}
	if !ok {
		return c, "messaging_channel must be whatsapp, messenger or instagram"
	}
	var ud map[string]json.RawMessage
	if json.Unmarshal(ev["user_data"], &ud) != nil || ud == nil {
		return c, "user_data must be an object"
	}
	for _, f := range ids {
		if !idValue(ud[f]) {
			return c, "user_data." + f + " is required for " + c.Channel
		}
	}
	if p := checkDataProcessing(ev); p != "" {
		return c, p
	}
	return c, checkCustomData(c.EventName, ev["custom_data"])
}

// checkDataProcessing checks Limited Data Use ("Data Processing Options for
// US Users"): options [] or ["LDU"], country 0 or 1, state 0 or 1000.
func checkDataProcessing(ev map[string]json.RawMessage) string {
	if raw, ok := ev["data_processing_options"]; ok {
		var opts []string
		if json.Unmarshal(raw, &opts) != nil || len(opts) > 1 || (len(opts) == 1 && opts[0] != "LDU") {
			return `data_processing_options must be [] or ["LDU"]`
		}
	}
	for f, code := range map[string]string{"data_processing_options_country": "1", "data_processing_options_state": "1000"} {
		if raw, ok := ev[f]; ok {
			if v := string(bytes.TrimSpace(raw)); v != "0" && v != code {
				return f + " is not a supported value"
			}
		}
	}
	return ""
}

func checkCustomData(name string, raw json.RawMessage) string {
	var cd map[string]json.RawMessage
	if raw != nil && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if json.Unmarshal(raw, &cd) != nil {
			return "custom_data must be an object"
		}
	}
	if name != "Purchase" {
		return ""
	}
	var cur string
	if !jsonString(cd["currency"], &cur) || len(cur) != 3 || !letters(cur) {
		return "custom_data.currency (ISO 4217) is required for Purchase"
	}
	if !jsonNumber(cd["value"]) {
		return "custom_data.value must be a number for Purchase"
	}
	return ""
}

func jsonString(raw json.RawMessage, dst *string) bool {
	return len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, dst) == nil
}

// jsonNumber reports whether raw is a JSON number (not a numeric string).
func jsonNumber(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return false
	}
	_, err := strconv.ParseFloat(string(raw), 64)
	return err == nil
}

func jsonInt(raw json.RawMessage) (int64, bool) {
	if !jsonNumber(raw) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	return n, err == nil && n > 0
}

// idValue accepts a non-empty string or a number: Meta's samples write ids
// both ways ("page_id": <PAGE_ID>).
func idValue(raw json.RawMessage) bool {
	var s string
	return (jsonString(raw, &s) && s != "") || jsonNumber(raw)
}

func letters(s string) bool {
	for _, r := range s {
		if (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') {
			return false
		}
	}
	return true
}
