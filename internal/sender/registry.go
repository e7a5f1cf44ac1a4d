package sender

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// NewRegistry opens the business registry the sender reads (Deps.Registry):
// a cache over the registry in rdb that sees a change within about a
// second, with cfg.RegistryKey's keyring to open the records' secrets. A
// failed poll is logged (never with a secret: registry errors hold none).
func NewRegistry(cfg Config, rdb redis.UniversalClient, log *zap.Logger) (*registry.Cache, error) {
	keys, err := registry.ParseKeyring(cfg.RegistryKey)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", registry.KeyEnv, err)
	}
	log = log.With(zap.String("component", "sender"))
	return registry.NewCache(registry.NewStore(rdb, keys), registry.CacheConfig{
		OnError: registry.ErrorEvery(time.Minute, func(err error) {
			log.Warn("registry poll failed (logged at most once a minute); records are served from memory", zap.Error(err))
		}),
	}), nil
}

// noteHeld logs that business's conversions are held (parked), once per
// business and reason, so that a business held for days does not fill the
// log, and a new reason is still told.
func (s *Service) noteHeld(business string, he *heldError) {
	if prev, ok := s.heldLog.Swap(business, he.reason); ok && prev.(string) == he.reason {
		return
	}
	s.log.Error("business's conversions parked: "+he.reason, zap.String("business_id", business))
}

// released forgets that business was held, so that a hold again is logged.
func (s *Service) released(business string) {
	if _, ok := s.heldLog.LoadAndDelete(business); ok {
		s.log.Info("business no longer held; its parked conversions go back", zap.String("business_id", business))
	}
}

// resumeEvery is how often a sender looks whether the businesses it has
// paused in memory were resumed (POST /v1/businesses/{id}/resume) or work
// again on another sender.
const resumeEvery = time.Second

// resumeLoop ends this sender's in-memory pause of every business whose
// shared pause is gone while its ok key is set: a resume through the admin
// API (Resumer) or an accepted request on another sender. Without it, a
// sender would keep a resumed business paused for the rest of its
// PAUSE_INTERVAL, re-parking the messages sent back. One Redis round trip
// a second, and none while nothing is paused here.
func (s *Service) resumeLoop(ctx context.Context) {
	t := time.NewTicker(resumeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n := s.checkResumed(ctx); n > 0 {
			// Send the parked messages back now rather than at the next
			// unpark round.
			if err := s.unparkRound(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("unpark round failed; trying again", zap.Error(err))
			}
		}
	}
}

// checkResumed ends the in-memory pauses of the resumed businesses and
// returns how many it ended.
func (s *Service) checkResumed(ctx context.Context) int {
	ids := s.biz.pausedIDs(s.now())
	if len(ids) == 0 {
		return 0
	}
	paused := make([]*redis.IntCmd, len(ids))
	ok := make([]*redis.IntCmd, len(ids))
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.rdb.Pipelined(rctx, func(p redis.Pipeliner) error {
		for i, b := range ids {
			paused[i] = p.Exists(rctx, pauseKey(b))
			ok[i] = p.Exists(rctx, okKey(b))
		}
		return nil
	}); err != nil {
		return 0 // Redis away: the pauses run their course
	}
	n := 0
	for i, b := range ids {
		if paused[i].Val() == 0 && ok[i].Val() == 1 && s.biz.unpause(b) {
			n++
			s.m.paused.Set(float64(s.biz.pausedCount()))
			s.log.Info("business resumed", zap.String("business_id", b), zap.String("by", "shared state (resume or another sender)"))
		}
	}
	return n
}
