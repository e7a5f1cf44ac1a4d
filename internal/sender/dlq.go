package sender

import (
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/pkg/capi"
)

// Dead-letter reasons: the subject is dlq.<reason>.
const (
	ReasonInvalid      = "invalid"      // the message breaks the contract; fix the publisher
	ReasonExpired      = "expired"      // event_time outside what Meta accepts (7 days back, ~1 minute ahead)
	ReasonUnattributed = "unattributed" // no ad-click context within CONTEXT_WAIT; redrive when it arrives
	ReasonNoClickID    = "no_click_id"  // the WhatsApp ad referral came without ctwa_clid (Status ads); redrive if a click arrives
	ReasonRejected     = "rejected"     // Meta refused the event; Ctm-Dlq-Error has Meta's message
	ReasonInDoubt      = "in_doubt"     // a send may have reached Meta; check before a forced redrive
	// ReasonForward is internal/forward's: a webhook body no destination
	// took within FORWARD_MAX_AGE. Its data is Meta's body, not a
	// conversion.
	ReasonForward = "forward"
)

// Headers of a dead letter (its data is the original message, byte for byte).
const (
	HeaderReason  = "Ctm-Dlq-Reason"
	HeaderError   = "Ctm-Dlq-Error"   // why: the rule broken, or Meta's message for rejected
	HeaderSubject = "Ctm-Dlq-Subject" // the original subject, where redrive publishes it back
	HeaderTime    = "Ctm-Dlq-Time"    // when it was dead-lettered (RFC 3339)
	HeaderEventID = "Ctm-Event-Id"
	// HeaderMsgID is the original Nats-Msg-Id, the base of the redrive's.
	HeaderMsgID = "Ctm-Dlq-Msg-Id"
	// HeaderPublished is when the conversion was first published (RFC 3339,
	// nanoseconds). A dead letter and a redrive carry it, so that a redriven
	// message without event_time keeps its original time.
	HeaderPublished = "Ctm-Published"
	// HeaderCameBack is "redrive" or "unpark" on a message sent back from
	// DLQ or PARKED; HeaderCameBackBy names who redrove it.
	HeaderCameBack   = "Ctm-Came-Back"
	HeaderCameBackBy = "Ctm-Came-Back-By"
	// HeaderLedgerID is the event's id in the sender's ledger (business and
	// event_id), which sender redrive -force names when it asks the ledger to
	// let the event be resent. (No header asks that: the ledger holds the
	// operator's request; see pkg/ledger.AllowTakeOver.)
	HeaderLedgerID = "Ctm-Ledger-Id"
)

// maxHeaderValue bounds the error text kept in a header.
const maxHeaderValue = 2048

// deadLetterMsg builds the dead letter of it. Nats-Msg-Id is the original's
// stream sequence and the reason, so a dead letter published again after a
// crash (the ack was lost) is dropped by the DLQ stream's duplicate window.
func deadLetterMsg(it *item, reason, text string, now time.Time) *nats.Msg {
	m := nats.NewMsg("dlq." + reason)
	m.Data = it.msg.Data()
	h := m.Header
	h.Set(jetstream.MsgIDHeader, strconv.FormatUint(it.seq, 10)+"-"+reason)
	h.Set(HeaderReason, reason)
	h.Set(HeaderError, headerValue(capi.Scrub(text))) // capi scrubs Meta's texts; this guards the rest
	h.Set(HeaderSubject, it.msg.Subject())
	h.Set(HeaderTime, now.UTC().Format(time.RFC3339))
	h.Set(HeaderPublished, it.published.UTC().Format(time.RFC3339Nano))
	if it.conv.EventID != "" {
		h.Set(HeaderEventID, headerValue(it.conv.EventID))
	}
	if it.ledgerID != "" {
		h.Set(HeaderLedgerID, headerValue(it.ledgerID))
	}
	if id := it.msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
		h.Set(HeaderMsgID, id)
	}
	return m
}

// headerValue makes text safe for a NATS header: one line, bounded.
func headerValue(text string) string {
	text = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, text)
	if len(text) > maxHeaderValue {
		text = strings.ToValidUTF8(text[:maxHeaderValue], "")
	}
	return text
}
