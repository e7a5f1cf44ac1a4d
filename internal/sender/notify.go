package sender

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/notify"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
)

// notifyWait bounds telling one notification: it is stored in NOTIFY (one
// JetStream round trip), delivered later by the Deliverer.
const notifyWait = 2 * time.Second

// newNotify builds the partner notifications' publisher and deliverer when
// NOTIFY_URLS is set.
func (s *Service) newNotify(reg prometheus.Registerer) error {
	cfg := s.cfg.Notify
	cfg.Replicas = s.cfg.StreamReplicas
	var err error
	if s.notifier, err = notify.NewPublisher(s.js, cfg); err != nil {
		return err
	}
	s.deliverer, err = notify.NewDeliverer(s.js, cfg, s.log, reg)
	return err
}

// tell stores n; a failure is logged, never returned: a notification lost
// must not hold back a conversion.
func (s *Service) tell(ctx context.Context, n notify.Notification) {
	if s.notifier == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyWait)
	defer cancel()
	if err := s.notifier.Notify(ctx, n); err != nil {
		s.log.Warn("notification not stored", zap.String("type", n.Type), zap.String("business_id", n.BusinessID), zap.Error(err))
	}
}

// notifyPaused tells business.paused for the pause this sender began (the
// shared record was new), with Meta's code and our advice, never Meta's
// message text.
func (s *Service) notifyPaused(ctx context.Context, business string, r PauseRecord) {
	s.tell(ctx, notify.Paused(business, time.UnixMilli(r.Since), r.Code, r.Subcode, r.Class, r.Fix))
}

// notifyRecovered tells business.recovered: this sender's first accepted
// request after its pause. Its id is the minute, so that two senders whose
// probes both succeeded tell it once.
func (s *Service) notifyRecovered(ctx context.Context, business string) {
	s.tell(ctx, notify.Recovered(business, time.Time{}, s.now().Truncate(time.Minute)))
}

// notifyVersion tells graph.version_expiring when GRAPH_API_VERSION
// expires within capi.VersionWarnWithin or has expired.
func (s *Service) notifyVersion(ctx context.Context, st capi.VersionState) {
	if st != capi.VersionExpiring && st != capi.VersionExpired {
		return
	}
	now := s.now()
	_, expires, msg := capi.VersionStatus(s.cfg.GraphVersion, now)
	s.tell(ctx, notify.VersionExpiring(s.cfg.GraphVersion, st.String(), expires, capi.DefaultVersion, msg, now))
}

// deadCounts are the dead letters of one settle, per business.
type deadCounts map[string]deadCount

type deadCount struct {
	n      int64
	reason string // the last one's
}

func (dc *deadCounts) add(business, reason string) {
	if *dc == nil {
		*dc = deadCounts{}
	}
	c := (*dc)[business]
	c.n++
	c.reason = reason
	(*dc)[business] = c
}

// deadLetterKey counts a business's dead letters in the window that began
// at start (Unix seconds), for every sender sharing the store.
func deadLetterKey(business string, start int64) string {
	return "ctm:notify:{" + business + "}:dlq:" + strconv.FormatInt(start, 10)
}

// countDeadLetters adds dc to each business's count of the current window
// (NOTIFY_DEAD_LETTERS_WINDOW, aligned to the clock) and tells
// dead_letters.rising for the business whose count crosses
// NOTIFY_DEAD_LETTERS_THRESHOLD: once a window, on whichever sender's
// settle crossed it. One pipelined round trip per settle with dead letters;
// a key per business with dead letters per window, kept two windows.
func (s *Service) countDeadLetters(dc deadCounts) {
	threshold, window := s.notifier.DeadLetterRule()
	if len(dc) == 0 || threshold <= 0 || window <= 0 {
		return
	}
	now := s.now()
	start := now.Truncate(window)
	ctx, cancel := context.WithTimeout(context.Background(), notifyWait)
	defer cancel()
	incr := make(map[string]*redis.IntCmd, len(dc))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for b, c := range dc {
			k := deadLetterKey(b, start.Unix())
			incr[b] = p.IncrBy(ctx, k, c.n)
			p.Expire(ctx, k, 2*window)
		}
		return nil
	}); err != nil {
		s.log.Debug("dead letters not counted for notifications", zap.Error(err))
		return
	}
	for b, c := range dc {
		total := incr[b].Val()
		if total >= int64(threshold) && total-c.n < int64(threshold) {
			s.tell(ctx, notify.DeadLettersRising(b, start, window, total, threshold, c.reason))
		}
	}
}
