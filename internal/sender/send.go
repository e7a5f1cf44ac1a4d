package sender

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/ledger"
)

// maxConcurrentGroups bounds the requests one batch has in flight.
const maxConcurrentGroups = 8

// sendAll sends the groups concurrently, so a slow or failing business does
// not hold up the others in the same batch.
func (b *batch) sendAll(ctx context.Context, groups []*group) {
	sem := make(chan struct{}, maxConcurrentGroups)
	var wg sync.WaitGroup
	for _, g := range groups {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			b.sendGroup(ctx, g)
		})
	}
	wg.Wait()
}

// sendGroup claims the group's events in the ledger and posts those it got.
func (b *batch) sendGroup(ctx context.Context, g *group) {
	s := b.s
	if ctx.Err() != nil { // shutting down: hand back, untried
		for _, it := range g.items {
			b.nak(it, 0, outcomeRetried)
		}
		return
	}
	st := s.biz.get(g.business)
	if wait, outcome := st.blocked(time.Now()); wait > 0 {
		b.holdBack(g.items, g.business, wait, outcome)
		return
	}
	owner := s.owner()
	res, err := b.claim(ctx, owner, g.items)
	if err != nil {
		// Some claims may have been stored before the connection broke: give
		// them back, or they would end as in doubt although never sent.
		s.log.Warn("ledger claim failed; events handed back", zap.Error(err), zap.Int("count", len(g.items)))
		b.release(owner, g.items)
		for _, it := range g.items {
			b.nak(it, s.cfg.RetryMin, outcomeRetried)
		}
		return
	}
	claimed := make([]*item, 0, len(g.items))
	for i, it := range g.items {
		switch r := res[i]; r.State {
		case ledger.Claimed:
			claimed = append(claimed, it)
		case ledger.Sent:
			b.ack(it, outcomeDuplicate)
		case ledger.Busy:
			b.nak(it, r.Wait+100*time.Millisecond, outcomeRetried)
		default:
			b.deadLetter(it, ReasonInDoubt, "an earlier send of this event_id got no answer from Meta, which may have accepted it; not resent automatically")
		}
	}
	for len(claimed) > 0 {
		n := min(len(claimed), capi.MaxBatch)
		if !b.post(ctx, g, st, owner, claimed[:n]) {
			// The business is blocked now: hand back the rest untried.
			b.release(owner, claimed[n:])
			wait, outcome := st.blocked(time.Now())
			b.holdBack(claimed[n:], g.business, max(wait, s.cfg.RetryMin), cmp.Or(outcome, outcomeRetried))
			return
		}
		claimed = claimed[n:]
	}
}

// claim claims items for owner. An event in doubt is taken over only when an
// operator asked for it with sender redrive -force, which records the request
// in the ledger (ledger.AllowTakeOver); nothing in the message can ask for it,
// since anyone who may publish conversions could set a header. The second
// round trip happens only for events in doubt, which are rare.
func (b *batch) claim(ctx context.Context, owner string, items []*item) ([]ledger.Result, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ledgerID
	}
	out, err := b.s.ledger.Claim(ctx, owner, b.s.cfg.SendLease, ids)
	if err != nil {
		return nil, err
	}
	var doubt []int
	var doubtIDs []string
	for i, r := range out {
		if r.State == ledger.InDoubt {
			doubt, doubtIDs = append(doubt, i), append(doubtIDs, ids[i])
		}
	}
	if len(doubt) == 0 {
		return out, nil
	}
	rf, err := b.s.ledger.TakeOver(ctx, owner, b.s.cfg.SendLease, doubtIDs)
	if err != nil {
		return nil, err
	}
	for j, i := range doubt {
		out[i] = rf[j]
	}
	return out, nil
}

// post sends one request of claimed events and settles them by the answer.
// It returns false when the business is blocked now (throttled, failing or
// paused), so the caller does not try its remaining events.
func (b *batch) post(ctx context.Context, g *group, st *business, owner string, items []*item) bool {
	s := b.s
	events := make([]capi.Event, len(items))
	ids := make([]string, len(items))
	for i, it := range items {
		events[i], ids[i] = it.event, it.ledgerID
	}
	s.failpoint(FailpointBeforePost)
	// Mark the post first, so that a crash from here on leaves the events in
	// doubt, and before it, free again when the lease ends (pkg/ledger).
	if err := s.ledger.Posting(ctx, owner); err != nil {
		if errors.Is(err, ledger.ErrFenced) {
			s.log.Warn("send lease ran out before posting; another sender took the events over", zap.Int("count", len(items)))
		} else {
			s.log.Warn("post marker not stored; events handed back", zap.Error(err), zap.Int("count", len(items)))
			b.release(owner, items)
		}
		for _, it := range items {
			b.nak(it, s.cfg.RetryMin, outcomeRetried)
		}
		return false
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.HTTPTimeout)
	start := time.Now()
	resp, err := s.poster.Send(sctx, g.ds.id, g.ds.token, events)
	cancel()
	s.m.graphDuration.Observe(time.Since(start).Seconds())
	if err == nil {
		s.markSent(ctx, ids)
		s.failpoint(FailpointAfterMarkSent)
		for _, it := range items {
			b.ack(it, outcomeSent)
		}
		s.sharedOK(g.business, time.Now())
		if s.biz.succeeded(st, resp.Usage, time.Now()) {
			s.m.paused.DeleteLabelValues(g.business)
			s.log.Info("business resumed", zap.String("business_id", g.business))
		}
		return true
	}
	if capi.IsInDoubt(err) {
		// Keep the claims (see the package comment): when the lease is over,
		// the redelivered messages find them in doubt and go to in_doubt.
		s.m.graphErrors.WithLabelValues("transport").Inc()
		s.log.Warn("send in doubt; events held until their lease ends", zap.Error(err),
			zap.String("business_id", g.business), zap.String("dataset_id", g.ds.id), zap.Int("count", len(items)))
		for _, it := range items {
			b.nak(it, s.cfg.SendLease, outcomeRetried)
		}
		return false
	}
	b.release(owner, items) // Meta answered with an error or never got the request
	if ctx.Err() != nil {   // cut off by shutdown before the request left
		for _, it := range items {
			b.nak(it, 0, outcomeRetried)
		}
		return false
	}
	var ee *capi.EncodeError
	if errors.As(err, &ee) && ee.Index >= 0 && ee.Index < len(items) {
		// Nothing left the process, and sending it again cannot succeed:
		// that event is invalid, the others go on. (conversion.Parse makes
		// this unreachable; it is here so that no bug retries for 7 days.)
		b.deadLetter(items[ee.Index], ReasonInvalid, "cannot be encoded for Meta: "+ee.Err.Error())
		if rest := append(items[:ee.Index:ee.Index], items[ee.Index+1:]...); len(rest) > 0 {
			b.sendGroup(ctx, &group{business: g.business, ds: g.ds, items: rest})
		}
		return true
	}
	var ae *capi.APIError
	if errors.As(err, &ae) && ae.Class() == capi.Rejected {
		s.m.graphErrors.WithLabelValues(graphErrorCode(ae.Code, ae.Status)).Inc()
		if len(items) == 1 {
			b.deadLetter(items[0], ReasonRejected, ae.Detail())
			return true
		}
		// Meta rejects a whole batch for one bad event: halve until the bad
		// ones stand alone. Each half is claimed again, as it may have been
		// sent meanwhile by another copy of a message.
		half := len(items) / 2
		b.sendGroup(ctx, &group{business: g.business, ds: g.ds, items: items[:half]})
		b.sendGroup(ctx, &group{business: g.business, ds: g.ds, items: items[half:]})
		return true
	}
	if ae == nil {
		s.m.graphErrors.WithLabelValues("transport").Inc()
	} else {
		s.m.graphErrors.WithLabelValues(graphErrorCode(ae.Code, ae.Status)).Inc()
	}
	b.failure(g.business, items, err, "send")
	return false
}

// failure hands back items of business after a definite failure of what
// (a send or a dataset lookup), slowing down or pausing the business.
func (b *batch) failure(business string, items []*item, err error, what string) {
	s := b.s
	st := s.biz.get(business)
	now := time.Now()
	var ae *capi.APIError
	isAPI := errors.As(err, &ae)
	class := capi.Retryable
	if isAPI {
		class = ae.Class()
		if class == capi.Rejected { // only a dataset lookup gets here: a setup fault
			class = capi.SetupFault
		}
	} else if errors.Is(err, capi.ErrNoToken) {
		class = capi.SetupFault
	}
	var d time.Duration
	outcome := outcomeRetried
	switch class {
	case capi.SetupFault:
		first, pause := s.biz.pause(st, now)
		d, outcome = pause, outcomePaused
		s.sharedPause(business)
		fields := []zap.Field{zap.String("business_id", business), zap.String("during", what),
			zap.Error(err), zap.Duration("pause", pause), zap.Int("count", len(items))}
		if first {
			s.m.paused.WithLabelValues(business).Set(1)
			s.log.Error("business paused: fix its access token, app secret, permissions or dataset; its events wait", fields...)
		} else {
			s.log.Warn("business still paused", fields...)
		}
	case capi.Throttled:
		d = s.biz.failed(st, true, ae.Usage.RetryAfter, now)
		s.log.Warn("business throttled", zap.String("business_id", business), zap.Error(err), zap.Duration("wait", d))
	case capi.Blocked:
		// 368: Meta blocks for hours, not seconds; the business waits the
		// longest of RETRY_MAX and PAUSE_INTERVAL between tries.
		d = s.biz.failed(st, true, max(s.cfg.RetryMax, s.cfg.PauseInterval, ae.Usage.RetryAfter), now)
		s.log.Warn("business temporarily blocked by meta", zap.String("business_id", business), zap.Error(err), zap.Duration("wait", d))
	default:
		d = s.biz.failed(st, false, 0, now)
		s.log.Warn("transient failure; events handed back", zap.String("business_id", business),
			zap.String("during", what), zap.Error(err), zap.Duration("wait", d))
	}
	b.holdBack(items, business, d, outcome)
}

// holdBack settles items of a business that cannot be sent now: parked
// while the business is paused (see park.go), else handed back after wait.
func (b *batch) holdBack(items []*item, business string, wait time.Duration, outcome string) {
	for _, it := range items {
		if outcome == outcomePaused {
			b.park(it, business)
		} else {
			b.nak(it, wait, outcome)
		}
	}
}

// markSent records accepted events, retrying while Redis is away: the
// events are at Meta, so the messages are acked afterwards in any case.
func (s *Service) markSent(ctx context.Context, ids []string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.SendLease)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		err := s.ledger.MarkSent(ctx, ids)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			s.log.Error("sent markers not stored; a later duplicate publish of these events could be sent again",
				zap.Error(err), zap.Int("count", len(ids)))
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// release gives back claims after a definite failure. It retries while
// Redis is away, up to the lease (after which a claim could only end as in
// doubt), on a context of its own so that a shutdown does not skip it.
func (b *batch) release(owner string, items []*item) {
	if len(items) == 0 {
		return
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ledgerID
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.s.cfg.SendLease)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		err := b.s.ledger.Release(ctx, owner, ids)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			// The claims stay until their lease ends; the messages then come
			// back as in doubt although Meta never got them. Safe, and rare.
			b.s.log.Warn("ledger release failed", zap.Error(err), zap.Int("count", len(ids)))
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
