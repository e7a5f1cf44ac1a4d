package ingest

import (
	"context"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// Policies tells ingest which businesses keep the first click of a
// conversation (registry field attribution: first_touch) when it stores a
// click; every other business keeps the latest. The composition root
// (internal/services.RegistryPolicies) reads it from the business registry.
type Policies interface {
	FirstTouch(ctx context.Context, businessID string) (bool, error)
}

// applyPolicies marks the touches of first-touch businesses, asking once
// per business of the delivery (a delivery is almost always one business).
func (s *Server) applyPolicies(ctx context.Context, touches []attribution.Touch) error {
	if s.policies == nil {
		return nil
	}
	var lastID string
	var last bool
	for i := range touches {
		id := touches[i].BusinessID
		if i == 0 || id != lastID {
			ft, err := s.policies.FirstTouch(ctx, id)
			if err != nil {
				return err
			}
			lastID, last = id, ft
		}
		touches[i].FirstTouch = last
	}
	return nil
}

// policiesFor is applyPolicies within STORE_TIMEOUT: a registry read that
// misses the cache is a store read like the write that follows.
func (s *Server) policiesFor(ctx context.Context, touches []attribution.Touch) error {
	if s.policies == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StoreTimeout)
	defer cancel()
	return s.applyPolicies(ctx, touches)
}
