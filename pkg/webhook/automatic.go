package webhook

import (
	"encoding/json"

	"github.com/valyala/fastjson"
)

// Automatic events: when a business has opted in to Automatic Events
// reporting, Meta detects a purchase or a lead in a click-to-WhatsApp thread
// and sends a change with field "automatic_events":
//
//	{"object":"whatsapp_business_account","entry":[{"id":WABA,"changes":[
//	  {"field":"automatic_events","value":{"metadata":{"phone_number_id":PNID},
//	   "automatic_events":[{"id":WAMID,"event_name":"Purchase","timestamp":1739321024,
//	     "ctwa_clid":CLID,"custom_data":{"currency":"USD","value":25000}}]}}]}]}
//
// Meta, "automatic_events webhook reference",
// https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/automatic_events
// says: id is the WhatsApp message id; event_name is LeadSubmitted or
// Purchase; timestamp (an integer) is when the webhook was triggered;
// ctwa_clid is omitted for ads in WhatsApp Status; custom_data comes only
// with purchases, and its value is the price multiplied by 1000. The
// reference shows no id of the customer.

// AutomaticEvent is one event Meta detected in a click-to-WhatsApp thread.
// Its strings are copied out of the parser's arena; CustomData is a copy too.
type AutomaticEvent struct {
	// BusinessID is the WABA id (entry[].id).
	BusinessID string `json:"business_id"`
	// PhoneNumberID is the business phone number id (metadata.phone_number_id).
	PhoneNumberID string `json:"phone_number_id,omitempty"`
	// MessageID is Meta's id of the event (the WhatsApp message id): with
	// EventName it identifies the event across redeliveries.
	MessageID string `json:"id"`
	// EventName is as Meta sent it ("Purchase", "LeadSubmitted"; an
	// unknown name is kept for the contract to judge).
	EventName string `json:"event_name"`
	// Time is the event's timestamp in Unix seconds; zero when missing or
	// not a number.
	Time int64 `json:"time"`
	// ClickID is the ctwa_clid; empty for ads in WhatsApp Status. Personal
	// data: never log it.
	ClickID string `json:"ctwa_clid,omitempty"`
	// UserID and BSUID are the customer's phone (from) and business-scoped
	// user id (from_user_id) should Meta add them, as it does to messages;
	// its reference shows neither today. Personal data.
	UserID string `json:"user_id,omitempty"`
	BSUID  string `json:"bsuid,omitempty"`
	// CustomData is the custom_data object as JSON (encoding/json's
	// compact form), nil when absent. Meta's value is price × 1000.
	CustomData json.RawMessage `json:"custom_data,omitempty"`
}

// waAutomatic turns the automatic_events of one Cloud API change value into
// AutomaticEvents, or counts them. An event is Malformed when it cannot be
// told apart from another (no id or event_name, no WABA id), when a field
// has the wrong JSON type, or when custom_data is not a JSON object.
func (pl *Payload) waAutomatic(events []*fastjson.Value, s waScope) {
	for _, ev := range events {
		if !isObject(ev) {
			pl.Malformed++
			continue
		}
		id, ok1 := str(ev, "id")
		name, ok2 := str(ev, "event_name")
		clid, ok3 := str(ev, "ctwa_clid")
		from, ok4 := str(ev, "from")
		bsuid, ok5 := str(ev, "from_user_id")
		cd := ev.Get("custom_data")
		okCD := !present(cd) || isObject(cd)
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !okCD || !s.ok ||
			len(id) == 0 || len(name) == 0 || len(s.business) == 0 {
			pl.Malformed++
			continue
		}
		var custom json.RawMessage
		if present(cd) {
			// fastjson quotes odd strings the Go way (\x01), which is not
			// JSON: check, and settle on encoding/json's form so the value
			// survives a round trip unchanged.
			raw := cd.MarshalTo(nil)
			var err error
			if !json.Valid(raw) {
				pl.Malformed++
				continue
			}
			if custom, err = json.Marshal(json.RawMessage(raw)); err != nil {
				pl.Malformed++
				continue
			}
		}
		t, _ := integer(ev.Get("timestamp"))
		ae := AutomaticEvent{Time: t, CustomData: custom}
		all := concat(s.business, s.phone, id, name, clid, from, bsuid)
		ae.BusinessID, all = cut(all, len(s.business))
		ae.PhoneNumberID, all = cut(all, len(s.phone))
		ae.MessageID, all = cut(all, len(id))
		ae.EventName, all = cut(all, len(name))
		ae.ClickID, all = cut(all, len(clid))
		ae.UserID, ae.BSUID = cut(all, len(from))
		pl.AutomaticEvents = append(pl.AutomaticEvents, ae)
	}
}
