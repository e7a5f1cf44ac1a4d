package sender

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/ledger"
)

// inDoubtText is the Ctm-Dlq-Error of an in_doubt dead letter.
const inDoubtText = "an earlier send of this event_id got no answer from Meta, which may have accepted it; not resent automatically"

// send takes one request's events (at most capi.MaxBatch, of one business,
// dataset and token) to an outcome each: it claims them in the ledger under
// an owner of the request's own (one lease per request), posts those it got
// and reads the answer.
func (s *Service) send(ctx context.Context, business string, ds dataset, items []*item) settlements {
	ss := make(settlements, 0, len(items))
	s.sendInto(ctx, &ss, business, ds, dedupe(items))
	return ss
}

// dedupe makes later copies of an event in items followers of the first,
// which settle with it. A queue gathers several fetches, so one request
// may hold two copies of an event (a duplicate publish): claimed under one
// owner, both would count as claimed and both be posted.
func dedupe(items []*item) []*item {
	seen := make(map[string]*item, len(items))
	out := items[:0:0]
	for _, it := range items {
		if p := seen[it.ledgerID]; p != nil {
			p.followers = append(p.followers, it)
			continue
		}
		seen[it.ledgerID] = it
		out = append(out, it)
	}
	return out
}

func (s *Service) sendInto(ctx context.Context, ss *settlements, business string, ds dataset, items []*item) {
	if ctx.Err() != nil { // cut off by shutdown: hand back, untried
		ss.addAll(items, retry(0))
		return
	}
	st := s.biz.get(business)
	if wait, label := st.blocked(time.Now()); wait > 0 {
		s.holdBack(ss, items, business, wait, label, "its business is backing off after a failure, or paused")
		return
	}
	owner := s.owner()
	res, err := s.claim(ctx, owner, items)
	if err != nil {
		// Some claims may have been stored before the connection broke: give
		// them back, or they would end as in doubt although never sent.
		s.log.Warn("ledger claim failed; events handed back", zap.Error(err), zap.Int("count", len(items)))
		s.release(owner, items)
		ss.addAll(items, retry(s.cfg.RetryMin).because("the ledger (Redis) did not answer the claim"))
		return
	}
	claimed := make([]*item, 0, len(items))
	var busy settlements
	for i, it := range items {
		switch r := res[i]; r.State {
		case ledger.Claimed:
			claimed = append(claimed, it)
		case ledger.Sent:
			ss.add(it, duplicate())
		case ledger.Busy:
			busy.add(it, retry(r.Wait+100*time.Millisecond).because("another request (or sender) holds this event_id's claim; comes again when it ends"))
		default:
			ss.add(it, deadLetter(ReasonInDoubt, inDoubtText))
		}
	}
	// A lease in doubt runs for SEND_LEASE: those waiting for it count
	// against MAX_HELD_PER_BUSINESS like any long hand-back.
	longest := time.Duration(0)
	for _, b := range busy {
		longest = max(longest, b.out.delay)
	}
	if len(busy) > 0 && !s.mayHandBack(business, len(busy), longest) {
		for i := range busy {
			busy[i].out = park(business).because(busy[i].out.why + " (parked: the business holds MAX_HELD_PER_BUSINESS)")
		}
	}
	*ss = append(*ss, busy...)
	if len(claimed) > 0 {
		s.post(ctx, ss, business, ds, st, owner, claimed)
	}
}

// claim claims items for owner. An event in doubt is taken over only when an
// operator asked for it with sender redrive -force, which records the request
// in the ledger (ledger.AllowTakeOver); nothing in the message can ask for it,
// since anyone who may publish conversions could set a header. The second
// round trip happens only for events in doubt, which are rare.
func (s *Service) claim(ctx context.Context, owner string, items []*item) ([]ledger.Result, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ledgerID
	}
	out, err := s.lb.Claim(ctx, owner, ids)
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
	rf, err := s.ledger.TakeOver(ctx, owner, s.cfg.SendLease, doubtIDs)
	if err != nil {
		return nil, err
	}
	for j, i := range doubt {
		out[i] = rf[j]
	}
	return out, nil
}

// post sends one request of claimed events and adds their outcomes by the
// answer.
func (s *Service) post(ctx context.Context, ss *settlements, business string, ds dataset, st *business, owner string, items []*item) {
	events := make([]capi.Event, len(items))
	ids := make([]string, len(items))
	for i, it := range items {
		events[i], ids[i] = it.event, it.ledgerID
	}
	s.failpoint(FailpointBeforePost)
	// One of MAX_INFLIGHT slots for the post; the ledger work before and
	// after it does not hold one (pipeline.slot).
	done, ok := s.pipe.slot(ctx)
	if !ok { // cut off by shutdown before the request left
		s.release(owner, items)
		ss.addAll(items, retry(0))
		return
	}
	// Mark the post first, so that a crash from here on leaves the events in
	// doubt, and before it, free again when the lease ends (pkg/ledger).
	if err := s.lb.Posting(ctx, owner); err != nil {
		if errors.Is(err, ledger.ErrFenced) {
			s.log.Warn("send lease ran out before posting; another sender took the events over", zap.Int("count", len(items)))
		} else {
			s.log.Warn("post marker not stored; events handed back", zap.Error(err), zap.Int("count", len(items)))
			s.release(owner, items)
		}
		done()
		ss.addAll(items, retry(s.cfg.RetryMin).because("the ledger could not record the post; not sent, comes again"))
		return
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.HTTPTimeout)
	start := time.Now()
	span := graphSpan(ctx, business, ds, items)
	resp, err := s.postAs(sctx, ds, events)
	endGraphSpan(span, resp, err)
	cancel()
	done()
	took := time.Since(start)
	reqID := s.logAttempt(business, ds.id, start, took, len(items), resp, err)
	s.m.graphDuration.Observe(took.Seconds())
	s.tw.Latency(start, took)
	if err == nil {
		if resp.VersionWarning != "" {
			s.versionWarning(resp.VersionWarning)
		}
		s.markSent(ctx, ids)
		s.failpoint(FailpointAfterMarkSent)
		now := time.Now()
		ss.addAll(items, sentVia(ds.id, resp, now, reqID))
		s.tw.Accepted(business, now)
		s.tw.Count(business, now, trail.FieldRequests, 1)
		s.sharedOK(business, now)
		if s.biz.succeeded(st, resp.Usage, time.Now()) {
			s.m.paused.Set(float64(s.biz.pausedCount()))
			s.log.Info("business resumed", zap.String("business_id", business))
			s.notifyRecovered(ctx, business)
		}
		return
	}
	if capi.IsInDoubt(err) {
		// Keep the claims (see the package comment): when the lease is over,
		// the redelivered messages find them in doubt and go to in_doubt.
		// The business backs off as after any failure, so that a hung one
		// does not keep its slots busy with request after request.
		s.m.graphErrors.WithLabelValues("transport").Inc()
		d := s.biz.failed(st, false, 0, time.Now())
		s.log.Warn("send in doubt; events held until their lease ends", zap.Error(err),
			zap.String("business_id", business), zap.String("dataset_id", ds.id), zap.Int("count", len(items)),
			zap.Duration("backoff", d))
		why := "a send got no answer from Meta, which may have the event; held until the claim's lease ends, then in_doubt"
		if !s.mayHandBack(business, len(items), s.cfg.SendLease) {
			// Parked, they find the claim in doubt when they come back.
			ss.addAll(items, park(business).because(why+" (parked: the business holds MAX_HELD_PER_BUSINESS)"))
			return
		}
		ss.addAll(items, retry(s.cfg.SendLease).because(why))
		return
	}
	s.release(owner, items) // Meta answered with an error or never got the request
	if ctx.Err() != nil {   // cut off by shutdown before the request left
		ss.addAll(items, retry(0))
		return
	}
	var ee *capi.EncodeError
	if errors.As(err, &ee) && ee.Index >= 0 && ee.Index < len(items) {
		// Nothing left the process, and sending it again cannot succeed:
		// that event is invalid, the others go on. (conversion.Parse makes
		// this unreachable; it is here so that no bug retries for 7 days.)
		ss.add(items[ee.Index], deadLetter(ReasonInvalid, "cannot be encoded for Meta: "+ee.Err.Error()))
		if rest := append(items[:ee.Index:ee.Index], items[ee.Index+1:]...); len(rest) > 0 {
			s.sendInto(ctx, ss, business, ds, rest)
		}
		return
	}
	var ae *capi.APIError
	if errors.As(err, &ae) && ae.Class() == capi.Rejected {
		s.m.graphErrors.WithLabelValues(graphErrorCode(ae.Code, ae.Status)).Inc()
		if len(items) == 1 {
			ss.add(items[0], deadLetter(ReasonRejected, ae.Detail()))
			return
		}
		// Meta rejects a whole batch for one bad event: halve until the bad
		// ones stand alone. Each half is claimed again (a lease of its own),
		// as it may have been sent meanwhile by another copy of a message.
		half := len(items) / 2
		s.sendInto(ctx, ss, business, ds, items[:half])
		s.sendInto(ctx, ss, business, ds, items[half:])
		return
	}
	if ae == nil {
		s.m.graphErrors.WithLabelValues("transport").Inc()
	} else {
		s.m.graphErrors.WithLabelValues(graphErrorCode(ae.Code, ae.Status)).Inc()
	}
	s.failure(ss, business, items, err, "send")
}

// credPoster is a poster that sends with one business's credentials
// (capi.Client, DryRun); a poster without it gets the token alone.
type credPoster interface {
	SendAs(ctx context.Context, datasetID string, cr capi.Credentials, events []capi.Event) (capi.Response, error)
}

// postAs posts events with ds's credentials.
func (s *Service) postAs(ctx context.Context, ds dataset, events []capi.Event) (capi.Response, error) {
	if p, ok := s.poster.(credPoster); ok {
		return p.SendAs(ctx, ds.id, ds.creds(), events)
	}
	return s.poster.Send(ctx, ds.id, ds.token, events)
}

// failure adds the outcomes of items of business after a definite failure
// of what (a send or a dataset lookup), slowing down or pausing the
// business.
func (s *Service) failure(ss *settlements, business string, items []*item, err error, what string) {
	var he *heldError
	switch {
	case errors.As(err, &he):
		s.noteHeld(business, he)
		ss.addAll(items, park(business))
		return
	case errors.Is(err, errLookupPending):
		ss.addAll(items, retry(lookupRetry))
		return
	}
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
	label := outcomeRetried
	why := what + " failed: " + err.Error()
	switch class {
	case capi.SetupFault:
		first, pause := s.biz.pause(st, now)
		d, label = pause, outcomePaused
		s.sharedPause(business, err)
		fields := []zap.Field{zap.String("business_id", business), zap.String("during", what),
			zap.Error(err), zap.Duration("pause", pause), zap.Int("count", len(items))}
		if isAPI {
			fix := ae.Rule().Why
			fields = append(fields, zap.String("fix", fix))
			why += " (" + fix + ")"
			if ae.Code == capi.CodeDeprecatedVersion {
				fields = append(fields, zap.String("graph_api_version", s.cfg.GraphVersion), zap.String("newest", capi.DefaultVersion))
			}
		}
		if first {
			s.m.paused.Set(float64(s.biz.pausedCount()))
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
	s.holdBack(ss, items, business, d, label, why)
}

// holdBack adds the outcomes of items of a business that cannot be sent
// now: parked while the business is paused (see park.go), else handed back
// after wait.
func (s *Service) holdBack(ss *settlements, items []*item, business string, wait time.Duration, label, why string) {
	if label == outcomePaused {
		ss.addAll(items, park(business).because(why))
		return
	}
	if !s.mayHandBack(business, len(items), wait) {
		ss.addAll(items, park(business).because(why+" (parked: the business holds MAX_HELD_PER_BUSINESS)"))
		return
	}
	ss.addAll(items, retryAs(wait, label).because(why))
}

// mayHandBack reports whether n messages of business may be handed back
// for wait rather than parked (pipeline.handBack).
func (s *Service) mayHandBack(business string, n int, wait time.Duration) bool {
	return s.pipe == nil || s.pipe.handBack(business, n, wait, time.Now())
}

// markSent records accepted events, retrying while Redis is away: the
// events are at Meta, so the messages are acked afterwards in any case.
func (s *Service) markSent(ctx context.Context, ids []string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.SendLease)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		err := s.lb.MarkSent(ctx, ids)
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
func (s *Service) release(owner string, items []*item) {
	if len(items) == 0 {
		return
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ledgerID
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.SendLease)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		err := s.ledger.Release(ctx, owner, ids)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			// The claims stay until their lease ends; the messages then come
			// back as in doubt although Meta never got them. Safe, and rare.
			s.log.Warn("ledger release failed", zap.Error(err), zap.Int("count", len(ids)))
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// versionWarningEvery bounds the log lines of version warnings: Meta sends
// one with every answer while GRAPH_API_VERSION is expired.
const versionWarningEvery = time.Hour

// versionWarning counts an answer Meta auto-upgraded from an expired
// GRAPH_API_VERSION and logs Meta's text at most once per
// versionWarningEvery.
func (s *Service) versionWarning(text string) {
	s.m.versionWarnings.Inc()
	now := s.now()
	s.versionWarnMu.Lock()
	due := s.versionWarnAt.IsZero() || now.Sub(s.versionWarnAt) >= versionWarningEvery
	if due {
		s.versionWarnAt = now
	}
	s.versionWarnMu.Unlock()
	if due {
		_, _, status := capi.VersionStatus(s.cfg.GraphVersion, now)
		s.log.Warn("Meta answered with a newer Marketing API version than GRAPH_API_VERSION: set a supported version and restart",
			zap.String("graph_api_version", s.cfg.GraphVersion), zap.String("newest", capi.DefaultVersion),
			zap.String("meta_warning", text), zap.String("status", status), zap.Duration("next_log_after", versionWarningEvery))
	}
}
