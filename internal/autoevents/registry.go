package autoevents

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// Registry is the business registry as the switch reads it
// (*registry.Cache).
type Registry interface {
	Business(ctx context.Context, id string) (registry.Business, error)
}

// RegistrySwitch reports a business's automatic events when
// AUTOMATIC_EVENTS is on (Config) or its registry record says
// automatic_events: true.
//
// A record this process cannot read is reported to OnUnreadable once per
// business and counts as off: its secrets are sealed and REGISTRY_KEY is not
// set here, or the store refuses the registry's commands (an error reply,
// which no retry fixes). Redis away is an error, so that Meta sends the
// delivery again.
type RegistrySwitch struct {
	Config       Config
	Registry     Registry
	OnUnreadable func(businessID string, err error)

	told sync.Map // business id → struct{}: OnUnreadable was called
}

// Enabled implements Switch.
func (s *RegistrySwitch) Enabled(ctx context.Context, businessID string) (bool, error) {
	if s.Config.On {
		return true, nil
	}
	if s.Registry == nil || registry.ValidID("business_id", businessID) != nil {
		return false, nil
	}
	b, err := s.Registry.Business(ctx, businessID)
	var reply redis.Error
	switch {
	case err == nil:
		return b.AutomaticEvents, nil
	case errors.Is(err, registry.ErrNotFound):
		return false, nil
	case errors.Is(err, registry.ErrNoKey), errors.Is(err, registry.ErrDecrypt), errors.As(err, &reply):
		if _, told := s.told.LoadOrStore(businessID, struct{}{}); !told && s.OnUnreadable != nil {
			s.OnUnreadable(businessID, err)
		}
		return false, nil
	}
	return false, fmt.Errorf("automatic_events flag of business %s: %w", businessID, err)
}
