package sender

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/conversion"
	"github.com/ctmpipe/ctmpipe/pkg/ledger"
)

// group is the events of one fetch of one business going to one dataset
// with one token.
type group struct {
	business string
	ds       dataset
	items    []*item
}

// join looks up the contexts of the whole batch in one call and maps the
// attributed conversions to events. A conversion without its context waits
// (NakWithDelay, doubling from CONTEXT_RETRY_MIN) while it is younger than
// CONTEXT_WAIT, then becomes dead letter unattributed; one whose WhatsApp
// context says its referral came without ctwa_clid becomes dead letter
// no_click_id at once. A WhatsApp conversion
// that carries its own ctwa_clid (Meta's automatic events) needs no context:
// its business_id is the WABA id and the click id is the one Meta gave.
func (s *Service) join(ctx context.Context, ss *settlements, live []*item, now time.Time) []*item {
	if len(live) == 0 {
		return nil
	}
	keys := make([]attribution.Key, 0, len(live))
	for _, it := range live {
		if !carriesClick(&it.conv) {
			keys = append(keys, attribution.Key{Channel: it.conv.Channel, BusinessID: it.conv.BusinessID, UserID: it.conv.UserID})
		}
	}
	var found []*attribution.Context
	if len(keys) > 0 {
		var err error
		if found, err = s.store.Lookup(ctx, keys); err != nil {
			s.log.Warn("context lookup failed; batch handed back", zap.Error(err), zap.Int("count", len(live)))
			ss.addAll(live, retry(s.cfg.RetryMin).because("the context lookup (Redis) failed"))
			return nil
		}
	}
	out := live[:0]
	for _, it := range live {
		if carriesClick(&it.conv) {
			it.business = it.conv.BusinessID
			it.event = toEvent(&it.conv, nil, it.conv.EventTime)
			out = append(out, it)
			continue
		}
		cx := found[0]
		found = found[1:]
		if it.conv.Channel == attribution.WhatsApp && cx != nil && cx.ClickID == "" && cx.NoClickID {
			// No wait can help: the referral Meta sent has no click id (an
			// ad in WhatsApp Status). A later referral with one replaces it
			// (attribution's upsert); redrive then.
			ss.add(it, deadLetter(ReasonNoClickID, "the conversation's ad referral came without ctwa_clid (an ad in WhatsApp Status, or a lead Meta sends without one), which WhatsApp conversions need"))
			continue
		}
		var missing string
		switch {
		case it.conv.Channel == attribution.WhatsApp && cx == nil:
			missing = "no ad-click context for the conversation"
		case it.conv.Channel == attribution.WhatsApp && cx.ClickID == "":
			missing = "the conversation's context has no ctwa_clid, which WhatsApp conversions need"
		case cx == nil && s.referralRequired(ctx, it.conv.BusinessID, it.conv.Channel):
			missing = "no ad referral for the conversation (REQUIRE_REFERRAL lists " + it.conv.Channel + ")"
		}
		if missing == "" {
			it.business = businessOf(&it.conv, cx)
			it.event = toEvent(&it.conv, cx, it.conv.EventTime)
			out = append(out, it)
			continue
		}
		left := it.stored.Add(s.cfg.ContextWait).Sub(now)
		if left <= 0 {
			ss.add(it, deadLetter(ReasonUnattributed, missing+" within CONTEXT_WAIT"))
			continue
		}
		ss.add(it, retryAs(min(s.contextDelay(it.delivered), left+10*time.Millisecond), outcomeWaitingContext).
			because(missing+" yet; looked up again until CONTEXT_WAIT ends"))
	}
	return out
}

// carriesClick reports whether c names its own ad click (a WhatsApp
// conversion with ctwa_clid, as automatic events are) and so needs no
// stored context.
func carriesClick(c *conversion.Conversion) bool {
	return c.Channel == attribution.WhatsApp && c.CtwaClid != ""
}

// contextDelay is the wait before the n-th look for a missing context:
// CONTEXT_RETRY_MIN doubling per delivery up to CONTEXT_RETRY_MAX.
func (s *Service) contextDelay(delivered uint64) time.Duration {
	d := s.cfg.ContextRetryMin
	for i := uint64(1); i < delivered && d < s.cfg.ContextRetryMax; i++ {
		d *= 2
	}
	return min(d, s.cfg.ContextRetryMax)
}

// group collapses events with the same ledger id (a duplicate publish in the
// same batch follows the first copy) and sorts them by business, dataset
// and token. Businesses whose dataset cannot be resolved are handed back as
// a send failure would be.
func (s *Service) group(ctx context.Context, ss *settlements, live []*item) []*group {
	type resolved struct {
		ds  dataset
		err error
	}
	primaries := make(map[string]*item, len(live))
	cache := map[[2]string]resolved{}
	byKey := map[string]*group{}
	var groups []*group
	failed := map[string][]*item{}
	failures := map[string]error{}
	for _, it := range live {
		it.ledgerID = ledger.ID(it.business, it.conv.EventID)
		if p := primaries[it.ledgerID]; p != nil {
			p.followers = append(p.followers, it)
			continue
		}
		primaries[it.ledgerID] = it
		ck := [2]string{it.business, it.conv.DatasetID}
		r, ok := cache[ck]
		if !ok {
			r.ds, r.err = s.datasets.resolve(ctx, it.business, it.conv.DatasetID)
			cache[ck] = r
		}
		if r.err != nil {
			failed[it.business] = append(failed[it.business], it)
			failures[it.business] = r.err
			continue
		}
		gk := it.business + "\x00" + r.ds.id + "\x00" + r.ds.token
		g := byKey[gk]
		if g == nil {
			g = &group{business: it.business, ds: r.ds}
			byKey[gk] = g
			groups = append(groups, g)
		}
		g.items = append(g.items, it)
	}
	for business, items := range failed {
		s.failure(ss, business, items, failures[business], "dataset")
	}
	return groups
}
