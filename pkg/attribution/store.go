package attribution

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store keeps contexts in Redis.
type Store struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// NewStore returns a Store over rdb whose contexts expire ttl after their
// latest click (DefaultTTL when ttl is 0).
func NewStore(rdb redis.UniversalClient, ttl time.Duration) *Store {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Store{rdb: rdb, ttl: ttl}
}

// Record stores touches in one round trip: the latest click wins, the first
// seen time is kept, and a duplicate delivery changes nothing. WhatsApp touches
// with a PhoneNumberID also record phone_number_id → WABA id.
func (s *Store) Record(ctx context.Context, touches []Touch) error {
	panic("TODO(attribution helper)")
}

// Get returns the context for k, resolving a WhatsApp phone_number_id given as
// BusinessID to its WABA id. It returns ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, k Key) (Context, error) {
	panic("TODO(attribution helper)")
}

// Lookup returns the contexts for keys in one round trip in the common case
// (a second only for WhatsApp keys given by phone_number_id). The result has
// one entry per key, nil where no context is stored.
func (s *Store) Lookup(ctx context.Context, keys []Key) ([]*Context, error) {
	panic("TODO(attribution helper)")
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.rdb.Ping(ctx).Err()
}
