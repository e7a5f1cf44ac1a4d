package sender

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/conversion"
)

// expiryMargin keeps events a little younger than Meta's 7 days, so that one
// accepted here is not too old by the time the request reaches Meta.
const expiryMargin = 5 * time.Minute

// item is one fetched message on its way to an outcome.
type item struct {
	msg       jetstream.Msg
	seq       uint64    // stream sequence in CONVERSIONS
	stored    time.Time // when this copy entered the stream: CONTEXT_WAIT runs from here
	published time.Time // first publish (kept through redrives): the default event_time
	delivered uint64
	conv      conversion.Conversion
	business  string
	ledgerID  string
	event     capi.Event
	followers []*item // same ledger id later in the fetch: settled with this one
	settled   atomic.Bool
	heldBy    string // the business whose held count (pipeline.heldBiz) it is in; under pipeline.mu
}

// intake takes one fetch through parsing, joining and finding datasets,
// queues what can be sent and settles the rest.
func (s *Service) intake(ctx context.Context, msgs []jetstream.Msg) {
	s.m.batchSize.Observe(float64(len(msgs)))
	items := make([]*item, len(msgs))
	for i, m := range msgs {
		items[i] = &item{msg: m}
	}
	s.pipe.hold(items)
	var ss settlements
	now := s.now()
	live := s.parse(&ss, items, now)
	live = s.join(ctx, &ss, live, now)
	for _, g := range s.group(ctx, &ss, live) {
		if back := s.pipe.enqueue(g.business, g.ds, g.items, now); back != nil {
			ss.addAll(back, retry(0)) // shutting down: untried
		}
	}
	s.settle(ss)
}

// parse decodes and validates every message (pkg/conversion); invalid and
// expired ones become dead letters at once, on their first delivery, before
// anything is written to the ledger.
func (s *Service) parse(ss *settlements, items []*item, now time.Time) []*item {
	live := items[:0:0]
	for _, it := range items {
		if md, err := it.msg.Metadata(); err == nil {
			it.seq, it.stored, it.delivered = md.Sequence.Stream, md.Timestamp, md.NumDelivered
		} else {
			it.stored = now
		}
		it.published = it.stored
		h := it.msg.Headers()
		if v := h.Get(HeaderPublished); v != "" {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				it.published = t
			}
		}
		c, err := conversion.Parse(it.msg.Data())
		it.conv = c
		// Counted once: at the first delivery, and not again when redriven
		// or unparked (those copies carry Ctm-Published).
		if it.delivered <= 1 && h.Get(HeaderPublished) == "" {
			s.tw.Count(c.BusinessID, now, trail.FieldConversions, 1)
		}
		if err != nil {
			ss.add(it, deadLetter(ReasonInvalid, err.Error()))
			continue
		}
		t := c.EventTime
		if t == 0 {
			t = it.published.Unix()
		}
		switch et := time.Unix(t, 0); {
		case now.Sub(et) > capi.MaxEventAge-expiryMargin:
			ss.add(it, deadLetter(ReasonExpired, "event_time older than 7 days: Meta no longer accepts it"))
			continue
		case et.Sub(now) > capi.MaxFutureSkew:
			ss.add(it, deadLetter(ReasonExpired, "event_time in the future: Meta does not accept it"))
			continue
		}
		it.conv.EventTime = t
		live = append(live, it)
	}
	return live
}
