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
	before := pl.events()
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
	// Automatic events come only through the Cloud API (field
	// "automatic_events"; see automatic.go).
	if !s.onPrem {
		events, ok := arr(value, "automatic_events")
		if !ok {
			pl.Malformed++
		}
		pl.waAutomatic(events, s)
	}
	if pl.events() == before {
		pl.Ignored++
	}
}

// events is how many events pl has counted so far.
func (pl *Payload) events() int {
	return len(pl.Touches) + len(pl.AutomaticEvents) + len(pl.IDChanges) + pl.Ignored + pl.Malformed
}

// waMessage turns one inbound WhatsApp message into a Touch, or counts it.
func (pl *Payload) waMessage(msg, value *fastjson.Value, s waScope) {
	if !isObject(msg) {
		pl.Malformed++
		return
	}
	if typ, _ := str(msg, "type"); string(typ) == "system" {
		pl.waSystem(msg, s) // an id change (system.go)
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
	ids, ok5 := waSender(msg, value)
	if !ok3 || !ok4 || !ok5 || !s.ok {
		pl.Malformed++
		return
	}
	user := ids.phone
	if len(user) == 0 {
		user = ids.bsuid // a user with a username may show no phone at all
	}
	// On-Premises touches may have an empty business id (no WABA configured):
	// ParseOnPrem documents that the caller fills it in.
	if len(user) == 0 || (!s.onPrem && len(s.business) == 0) {
		pl.Malformed++
		return
	}
	bsuid := ids.bsuid
	if len(ids.phone) == 0 {
		bsuid = nil // it is the UserID already: share its bytes
	}
	// A timestamp that is missing or not a number leaves Time zero: the
	// click is still keyed, and the caller knows when it received it.
	t, _ := integer(msg.Get("timestamp"))
	tc := Touch{Channel: WhatsApp, BusinessID: s.wabaID, Time: t}
	all := concat(s.business, s.phone, user, bsuid, ids.parent, ids.from, clid, sourceID, sourceType, sourceURL)
	if !s.onPrem {
		tc.BusinessID = all[:len(s.business)]
	}
	all = all[len(s.business):]
	tc.PhoneNumberID, all = cut(all, len(s.phone))
	tc.UserID, all = cut(all, len(user))
	tc.BSUID, all = cut(all, len(bsuid))
	if len(ids.phone) == 0 {
		tc.BSUID = tc.UserID
	}
	tc.ParentBSUID, all = cut(all, len(ids.parent))
	tc.From, all = cut(all, len(ids.from))
	tc.ClickID, all = cut(all, len(clid))
	tc.AdID, all = cut(all, len(sourceID))
	tc.SourceType, tc.SourceURL = cut(all, len(sourceType))
	pl.Touches = append(pl.Touches, tc)
}

// waIDs are the ids of the customer who sent a WhatsApp message, still in the
// parser's arena. Since 2026 a customer who adopts a username may show no
// phone number: messages[].from and contacts[].wa_id are then absent, and the
// business-scoped user id (BSUID: messages[].from_user_id, contacts[].user_id)
// is what identifies them; linked business portfolios add a parent BSUID
// (from_parent_user_id, parent_user_id). Meta, "Business-scoped user IDs":
// https://developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids/
type waIDs struct {
	phone  []byte // contacts[].wa_id, else messages[].from
	from   []byte // messages[].from when it differs from wa_id, else nil
	bsuid  []byte
	parent []byte
}

// waSender reads the sender's ids from msg and from the contact that
// describes the same customer. Meta warns that from and wa_id may differ (a
// number's format can change, as with Brazilian and Mexican prefixes); the
// design keys by wa_id and keeps from as an alias. It reports false when an
// id of the message has the wrong JSON type.
func waSender(msg, value *fastjson.Value) (waIDs, bool) {
	from, ok1 := str(msg, "from")
	bsuid, ok2 := str(msg, "from_user_id")
	parent, ok3 := str(msg, "from_parent_user_id")
	if !ok1 || !ok2 || !ok3 {
		return waIDs{}, false
	}
	ids := waIDs{phone: from, bsuid: bsuid, parent: parent}
	c, ok := matchContact(value, from, bsuid)
	if !ok {
		return ids, true
	}
	if len(c.phone) > 0 {
		ids.phone = c.phone
		if len(from) > 0 && !bytes.Equal(from, c.phone) {
			ids.from = from
		}
	}
	if len(ids.bsuid) == 0 {
		ids.bsuid = c.bsuid
	}
	if len(ids.parent) == 0 {
		ids.parent = c.parent
	}
	return ids, true
}

// matchContact returns the ids of the contact that names the sender of a
// message: the one whose wa_id equals from or whose user_id equals the
// message's BSUID; failing that, the only customer the contacts name, unless
// its BSUID contradicts the message's. With two customers in one batch, a
// message whose ids match neither cannot be told apart, and no contact is
// used. Contacts whose ids have the wrong JSON type are skipped.
func matchContact(value *fastjson.Value, from, bsuid []byte) (waIDs, bool) {
	contacts, _ := arr(value, "contacts")
	var sole waIDs
	customers := 0
	for _, c := range contacts {
		waID, ok1 := str(c, "wa_id")
		userID, ok2 := str(c, "user_id")
		parent, ok3 := str(c, "parent_user_id")
		if !ok1 || !ok2 || !ok3 || (len(waID) == 0 && len(userID) == 0) {
			continue
		}
		ids := waIDs{phone: waID, bsuid: userID, parent: parent}
		if (len(from) > 0 && bytes.Equal(from, waID)) || (len(bsuid) > 0 && bytes.Equal(bsuid, userID)) {
			return ids, true
		}
		if customers == 0 || !sameCustomer(sole, ids) {
			customers++
		}
		sole = ids
	}
	if customers != 1 || (len(bsuid) > 0 && len(sole.bsuid) > 0 && !bytes.Equal(bsuid, sole.bsuid)) {
		return waIDs{}, false
	}
	return sole, true
}

// sameCustomer reports whether two contacts name the same customer.
func sameCustomer(a, b waIDs) bool {
	return bytes.Equal(a.phone, b.phone) && bytes.Equal(a.bsuid, b.bsuid)
}
