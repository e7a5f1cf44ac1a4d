package webhook

import (
	"bytes"

	"github.com/valyala/fastjson"
)

// WhatsApp Cloud API deliveries look like
//
//	{"object":"whatsapp_business_account","entry":[{"id":WABA,"changes":[
//	  {"field":"messages","value":{"metadata":{"phone_number_id":PNID},
//	   "contacts":[{"wa_id":...}],"messages":[MSG...],"statuses":[...]}}]}]}
//
// and On-Premises deliveries are a bare "value": top-level contacts, messages,
// statuses and errors. A MSG from a click-to-WhatsApp ad carries a referral
// with ctwa_clid (the click id CAPI needs) and source_id (the ad id).

// waScope is what identifies the business for the messages of one value.
type waScope struct {
	business []byte // entry.id (Cloud API)
	wabaID   string // the configured WABA id (On-Premises)
	phone    []byte // metadata.phone_number_id (Cloud API)
	onPrem   bool
	ok       bool // false when entry.id or phone_number_id has the wrong type
}

// parseCloud reads the entries and changes of a Cloud API delivery.
func (pl *Payload) parseCloud(root *fastjson.Value) {
	entries, ok := arr(root, "entry")
	if !ok {
		pl.Malformed++
	}
	for _, entry := range entries {
		if !isObject(entry) {
			pl.Malformed++
			continue
		}
		waba, wabaOK := str(entry, "id")
		changes, ok := arr(entry, "changes")
		if !ok {
			pl.Malformed++
		}
		for _, change := range changes {
			if !isObject(change) {
				pl.Malformed++
				continue
			}
			value := change.Get("value")
			if !isObject(value) {
				// Fields we do not subscribe to may carry other values.
				pl.Ignored++
				continue
			}
			phone, phoneOK := str(value.Get("metadata"), "phone_number_id")
			pl.parseValue(value, waScope{business: waba, phone: phone, ok: wabaOK && phoneOK})
		}
	}
}

// parseValue reads the messages, statuses and errors of one change value (or
// of a whole On-Premises delivery). A value with none of them, such as a
// template status update, counts as one Ignored event.
func (pl *Payload) parseValue(value *fastjson.Value, s waScope) {
	before := len(pl.Touches) + pl.Ignored + pl.Malformed
	messages, ok := arr(value, "messages")
	if !ok {
		pl.Malformed++
	}
	for _, msg := range messages {
		pl.waMessage(msg, value, s)
	}
	// Delivery receipts and errors carry no click.
	for _, key := range [...]string{"statuses", "errors"} {
		items, ok := arr(value, key)
		if !ok {
			pl.Malformed++
		}
		pl.Ignored += len(items)
	}
	if len(pl.Touches)+pl.Ignored+pl.Malformed == before {
		pl.Ignored++
	}
}

// waMessage turns one inbound WhatsApp message into a Touch, or counts it.
func (pl *Payload) waMessage(msg, value *fastjson.Value, s waScope) {
	if !isObject(msg) {
		pl.Malformed++
		return
	}
	ref := msg.Get("referral")
	if !present(ref) {
		pl.Ignored++
		return
	}
	if !isObject(ref) {
		pl.Malformed++
		return
	}
	clid, ok1 := str(ref, "ctwa_clid")
	sourceID, ok2 := str(ref, "source_id")
	if !ok1 || !ok2 {
		pl.Malformed++
		return
	}
	if len(clid) == 0 && len(sourceID) == 0 {
		pl.Ignored++
		return
	}
	sourceType, ok3 := str(ref, "source_type")
	sourceURL, ok4 := str(ref, "source_url")
	from, ok5 := str(msg, "from")
	if !ok3 || !ok4 || !ok5 || !s.ok {
		pl.Malformed++
		return
	}
	if len(from) == 0 {
		from = soleContact(value)
	}
	// On-Premises touches may have an empty business id (no WABA configured):
	// ParseOnPrem documents that the caller fills it in.
	if len(from) == 0 || (!s.onPrem && len(s.business) == 0) {
		pl.Malformed++
		return
	}
	// A timestamp that is missing or not a number leaves Time zero: the
	// click is still keyed, and the caller knows when it received it.
	t, _ := integer(msg.Get("timestamp"))
	tc := Touch{Channel: WhatsApp, BusinessID: s.wabaID, Time: t}
	all := concat(s.business, s.phone, from, clid, sourceID, sourceType, sourceURL)
	if !s.onPrem {
		tc.BusinessID = all[:len(s.business)]
	}
	all = all[len(s.business):]
	tc.PhoneNumberID, all = cut(all, len(s.phone))
	tc.UserID, all = cut(all, len(from))
	tc.ClickID, all = cut(all, len(clid))
	tc.AdID, all = cut(all, len(sourceID))
	tc.SourceType, tc.SourceURL = cut(all, len(sourceType))
	pl.Touches = append(pl.Touches, tc)
}

// soleContact returns the wa_id of the value's contacts when they name exactly
// one customer, and nil when there are none or several: with two customers in
// one batch, a message without "from" cannot be told apart.
func soleContact(value *fastjson.Value) []byte {
	contacts, _ := arr(value, "contacts")
	var id []byte
	for _, c := range contacts {
		waID, ok := str(c, "wa_id")
		if !ok {
			return nil
		}
		if len(waID) == 0 {
			continue
		}
		if id != nil && !bytes.Equal(id, waID) {
			return nil
		}
		id = waID
	}
	return id
}
