package webhook

import (
	"bytes"

	"github.com/valyala/fastjson"
)

// Messenger ("page") and Instagram ("instagram") deliveries share one shape:
//
//	{"object":"page","entry":[{"id":PAGE,"time":MS,"messaging":[EVENT...]}]}
//
// where an EVENT has sender.id, recipient.id, timestamp (milliseconds) and one
// of message, postback, referral (messaging_referrals), read, delivery, ...
// An ad click shows up as a referral on the first message, on the postback of
// the Get Started button, or as a messaging_referrals event when the user
// already had a thread. Apps that are secondary receivers under the handover
// protocol get the same events in "standby", which are read the same way.
//
// Meta's 2026 reference pages also show each event as a change of its own,
//
//	{"object":"page","entry":[{"id":PAGE,"time":MS,"changes":[
//	  {"field":"messaging_postbacks","value":EVENT}]}]}
//
// where "all JSON properties in a webhook notification are strings",
// timestamps included ("messaging_postbacks Webhooks Reference", Feb 2026,
// https://developers.facebook.com/documentation/business-messaging/messenger-platform/webhooks/webhook-events/messaging_postbacks).
// Both shapes are read, with numbers or strings; changes of other fields
// (Instagram comments, mentions) carry no click.

// parseMessaging reads the entries of a Messenger or Instagram delivery.
func (pl *Payload) parseMessaging(root *fastjson.Value) {
	entries, ok := arr(root, "entry")
	if !ok {
		pl.Malformed++
	}
	for _, entry := range entries {
		if !isObject(entry) {
			pl.Malformed++
			continue
		}
		// A page id of the wrong type only disables the "sent by the page"
		// check; the business id of a click comes from recipient.id.
		pageID, _ := str(entry, "id")
		entryTime, _ := integer(entry.Get("time"))
		for _, key := range [...]string{"messaging", "standby"} {
			events, ok := arr(entry, key)
			if !ok {
				pl.Malformed++
			}
			for _, ev := range events {
				pl.messagingEvent(ev, pageID, entryTime)
			}
		}
		changes, ok := arr(entry, "changes")
		if !ok {
			pl.Malformed++
		}
		for _, change := range changes {
			pl.messagingChange(change, pageID, entryTime)
		}
	}
}

// messagingChange reads one entry.changes element: a messaging event when
// its field is one of the messaging fields, something else (counted
// Ignored) otherwise.
func (pl *Payload) messagingChange(change *fastjson.Value, pageID []byte, entryTime int64) {
	if !isObject(change) {
		pl.Malformed++
		return
	}
	field, _ := str(change, "field")
	switch string(field) {
	case "messages", "messaging_postbacks", "messaging_referrals":
		pl.messagingEvent(change.Get("value"), pageID, entryTime)
	default:
		pl.Ignored++
	}
}

// messagingEvent turns one messaging event into a Touch, or counts it.
func (pl *Payload) messagingEvent(ev *fastjson.Value, pageID []byte, entryTime int64) {
	if !isObject(ev) {
		pl.Malformed++
		return
	}
	sender, senderOK := str(ev.Get("sender"), "id")
	// Echoes are the page's own messages; only customers' clicks count.
	if truthy(ev.Get("message", "is_echo")) || (len(pageID) > 0 && bytes.Equal(sender, pageID)) {
		pl.Ignored++
		return
	}
	ref := referral(ev)
	if !present(ref) {
		pl.Ignored++
		return
	}
	if !isObject(ref) {
		pl.Malformed++
		return
	}
	adID, ok1 := str(ref, "ad_id")
	source, ok2 := str(ref, "source")
	refParam, ok3 := str(ref, "ref")
	if !ok1 || !ok2 || !ok3 {
		pl.Malformed++
		return
	}
	// Referrals also come from m.me links, chat plugins and shops: only
	// those from ads are clicks worth reporting.
	if len(adID) == 0 && string(source) != "ADS" {
		pl.Ignored++
		return
	}
	recipient, recipientOK := str(ev.Get("recipient"), "id")
	if !senderOK || !recipientOK || len(sender) == 0 || len(recipient) == 0 {
		pl.Malformed++
		return
	}
	t, ok := integer(ev.Get("timestamp"))
	if !ok {
		t = entryTime
	}
	tc := Touch{Channel: pl.Channel, Time: millisToUnix(t)}
	all := concat(recipient, sender, adID, source, refParam)
	tc.BusinessID, all = cut(all, len(recipient))
	tc.UserID, all = cut(all, len(sender))
	tc.AdID, all = cut(all, len(adID))
	tc.SourceType, tc.Ref = cut(all, len(source))
	pl.Touches = append(pl.Touches, tc)
}

// referral returns the event's referral, wherever this kind of event keeps
// it, or nil.
func referral(ev *fastjson.Value) *fastjson.Value {
	for _, path := range [...][2]string{{"message", "referral"}, {"postback", "referral"}} {
		if r := ev.Get(path[0], path[1]); present(r) {
			return r
		}
	}
	return ev.Get("referral")
}

// millisToUnix converts Messenger's millisecond timestamps to Unix seconds.
// Values below 1e11 cannot be milliseconds of this century (1e11 ms is 1973)
// and are taken as seconds already, so a sender that "fixes" its timestamps
// does not push clicks back to 1970.
func millisToUnix(t int64) int64 {
	if t < 1e11 {
		return t
	}
	return t / 1000
}

// truthy reports whether v is true, as a JSON boolean or as the string
// "true" (the changes shape sends every property as a string).
func truthy(v *fastjson.Value) bool {
	if v == nil {
		return false
	}
	switch v.Type() {
	case fastjson.TypeTrue:
		return true
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return string(b) == "true"
	}
	return false
}
