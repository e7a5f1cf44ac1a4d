package sender

import (
	"cmp"

	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/trail"
)

// note records what became of it (outcome o; seq: its dead letter's DLQ
// sequence) in the event trail and the per-minute counters. Both are only
// buffered here: the next ledger round trip carries them (internal/trail),
// so settling costs no round trip of its own. A dead letter is also logged
// here, once, at WARN.
func (s *Service) note(it *item, o outcome, seq uint64) {
	now := s.now()
	biz := cmp.Or(it.business, it.conv.BusinessID) // the ledger's business once joined
	r := &trail.Record{
		BusinessID: it.conv.BusinessID, EventID: it.conv.EventID, Attempts: max(it.delivered, 1),
		FirstSeenAt: trail.At(it.published), UpdatedAt: trail.At(now),
		EventName: it.conv.EventName, Channel: it.conv.Channel, Reason: o.why,
	}
	if r.FirstSeenAt.IsZero() {
		r.FirstSeenAt = r.UpdatedAt
	}
	switch o.kind {
	case kindSent:
		r.State, r.Sent = trail.Sent, o.sentTo
		s.tw.Count(biz, now, trail.FieldSent, 1)
	case kindDuplicate:
		r.State = trail.Duplicate
		r.Reason = cmp.Or(r.Reason, "the ledger says Meta accepted this event_id already; not sent again")
		s.tw.Count("", now, trail.FieldDuplicate, 1)
	case kindRetry:
		at := trail.At(now.Add(o.delay))
		r.State, r.RetryAt = trail.Retrying, &at
		field := trail.FieldRetry
		if o.label == outcomeWaitingContext {
			r.State, field = trail.WaitingContext, trail.FieldWaitingContext
		}
		if o.delay == 0 && r.Reason == "" {
			r.Reason = "handed back untried (the sender was shutting down)"
		}
		s.tw.Count("", now, field, 1)
	case kindPark:
		r.State = trail.Parked
		r.Reason = cmp.Or(r.Reason, "its business is paused after a token or setup error; parked until it works again")
		s.tw.Count("", now, trail.FieldParked, 1)
	case kindDeadLetter:
		r.State = trail.DeadLetter
		if o.reason == ReasonInDoubt {
			r.State = trail.InDoubt
		}
		r.DeadLetter = &trail.Letter{Reason: o.reason, Error: headerValue(o.text), Seq: seq}
		s.tw.Count(biz, now, trail.FieldDeadLetter+o.reason, 1)
		s.log.Warn("dead letter", zap.String("event_id", it.conv.EventID), zap.String("business_id", it.conv.BusinessID),
			zap.String("reason", o.reason), zap.Uint64("dlq_seq", seq))
	default:
		return
	}
	if s.cfg.Trail && !s.trailOff {
		r.Before = cameFrom(it, r.FirstSeenAt)
		s.tw.Put(r)
	}
}

// cameFrom is the history change ahead of a first delivery's settlement:
// received (a message as published), or redriven or resumed (sent back from
// DLQ or PARKED, with who redrove it). Later deliveries add none.
func cameFrom(it *item, published trail.Time) []trail.Change {
	if it.delivered > 1 || it.msg == nil {
		return nil
	}
	h := it.msg.Headers()
	switch h.Get(HeaderCameBack) {
	case "redrive":
		return []trail.Change{{At: trail.At(it.stored), State: trail.Redriven, By: h.Get(HeaderCameBackBy),
			Cause: "sent back from the dead letters"}}
	case "unpark":
		return []trail.Change{{At: trail.At(it.stored), State: trail.Resumed, Cause: "its business works again; sent back from PARKED"}}
	}
	if h.Get(HeaderPublished) != "" {
		return nil
	}
	return []trail.Change{{At: published, State: "received"}}
}
