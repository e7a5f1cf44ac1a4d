package webhook

import (
	"slices"

	"github.com/valyala/fastjson"
)

// WhatsApp tells a business that a customer's id changed with a system
// message: an entry of messages[] with "type": "system" and no contacts
// array (Meta, "System messages webhook reference", updated Aug 11, 2026:
// https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/system/):
//
//   - user_changed_number: messages[].from is the old phone, system.wa_id
//     the new one; since August 2026 also system.previous_user_id (the old
//     BSUID) and system.user_id (the new), since a new phone regenerates the
//     BSUID (WhatsApp changelog, Aug 11, 2026).
//   - user_changed_user_id: the BSUID changed and no phone is shared:
//     system.previous_user_id and system.user_id; messages[].from_user_id
//     may carry the old BSUID too.
//
// system.body ("User <name> changed from <old> to <new>") is never read:
// it carries a name and numbers. The parent BSUIDs are not read either: a
// context is found under the user's own ids, and the parent BSUID, when a
// click carried it, is such an id already.

// The system message types that change a customer's id.
const (
	SystemUserChangedNumber = "user_changed_number"
	SystemUserChangedUserID = "user_changed_user_id"
)

// IDChange is a WhatsApp system message saying a customer's id changed.
type IDChange struct {
	// Type is SystemUserChangedNumber or SystemUserChangedUserID.
	Type       string `json:"type"`
	BusinessID string `json:"business_id"` // the WABA id
	// Old are the ids the customer had (messages[].from,
	// messages[].from_user_id, system.previous_user_id), New those it has
	// now (system.wa_id, system.user_id), each without duplicates and
	// without an id of the other side. Personal data: never log them.
	Old  []string `json:"old"`
	New  []string `json:"new"`
	Time int64    `json:"time"` // Unix seconds; 0 when absent
}

// waSystem reads a system message: an id change becomes an IDChange; other
// system messages are ignored; one whose ids cannot be read is malformed.
func (pl *Payload) waSystem(msg *fastjson.Value, s waScope) {
	sys := msg.Get("system")
	if !isObject(sys) {
		pl.Malformed++
		return
	}
	typ, ok := str(sys, "type")
	kind := ""
	switch string(typ) {
	case SystemUserChangedNumber, "customer_changed_number": // the older name
		kind = SystemUserChangedNumber
	case SystemUserChangedUserID:
		kind = SystemUserChangedUserID
	default:
		if ok {
			pl.Ignored++ // another kind of system message: nothing to store
		} else {
			pl.Malformed++
		}
		return
	}
	from, ok1 := str(msg, "from")
	fromUser, ok2 := str(msg, "from_user_id")
	prev, ok3 := str(sys, "previous_user_id")
	waID, ok4 := str(sys, "wa_id")
	if len(waID) == 0 && ok4 {
		waID, ok4 = str(sys, "new_wa_id") // On-Premises before v2.37
	}
	userID, ok5 := str(sys, "user_id")
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !s.ok || (!s.onPrem && len(s.business) == 0) {
		pl.Malformed++
		return
	}
	var c IDChange
	for _, id := range [][]byte{from, fromUser, prev} {
		if len(id) > 0 && !slices.Contains(c.Old, string(id)) {
			c.Old = append(c.Old, string(id))
		}
	}
	for _, id := range [][]byte{waID, userID} {
		if len(id) > 0 && !slices.Contains(c.New, string(id)) && !slices.Contains(c.Old, string(id)) {
			c.New = append(c.New, string(id))
		}
	}
	if len(c.Old) == 0 || len(c.New) == 0 {
		pl.Malformed++
		return
	}
	c.Type, c.BusinessID = kind, s.wabaID
	if !s.onPrem {
		c.BusinessID = string(s.business)
	}
	c.Time, _ = integer(msg.Get("timestamp"))
	pl.IDChanges = append(pl.IDChanges, c)
}
