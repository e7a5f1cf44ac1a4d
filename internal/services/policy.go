package services

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// businessReader is the registry as the policies read it (*registry.Cache,
// the same cache the automatic events' switch reads).
type businessReader interface {
	Business(ctx context.Context, id string) (registry.Business, error)
}

// RegistryPolicies reads the policy from the business registry through its
// cache, which sees a change within a few seconds. A business without a
// record keeps the last touch. A record ingest cannot read (its secrets are
// sealed and REGISTRY_KEY is not set here, or the store refuses the
// registry's commands) is logged once per business and keeps the last
// touch; Redis away is an error, so that Meta sends the delivery again.
type RegistryPolicies struct {
	Registry businessReader
	Log      *zap.Logger

	told sync.Map // business id → struct{}: logged as unreadable
}

// FirstTouch implements ingest.Policies.
func (p *RegistryPolicies) FirstTouch(ctx context.Context, businessID string) (bool, error) {
	if p == nil || p.Registry == nil || registry.ValidID("business_id", businessID) != nil {
		return false, nil
	}
	b, err := p.Registry.Business(ctx, businessID)
	var reply redis.Error
	switch {
	case err == nil:
		return b.Attribution == registry.FirstTouch, nil
	case errors.Is(err, registry.ErrNotFound):
		return false, nil
	case errors.Is(err, registry.ErrNoKey), errors.Is(err, registry.ErrDecrypt), errors.As(err, &reply):
		if _, told := p.told.LoadOrStore(businessID, struct{}{}); !told && p.Log != nil {
			p.Log.Error("attribution policy of this business unreadable here: its clicks are stored last touch (set REGISTRY_KEY, the senders' key, on ingest)",
				zap.String("business_id", businessID), zap.Error(err))
		}
		return false, nil
	}
	return false, fmt.Errorf("attribution policy of business %s: %w", businessID, err)
}
