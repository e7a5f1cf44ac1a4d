// Package audit records who changed what through the admin listener: every
// state-changing request of the admin API (registry writes, resumes,
// redrives) and so every console action, which goes through that API. An
// entry holds the time, the actor (the admin token's realm, or the console
// session that acted), the action, its target and what changed, by field
// name: never a secret's value, a token, or a personal id.
//
// Entries are kept in one Redis list, newest first, trimmed to MaxEntries:
// bounded memory (about 300 bytes an entry, 3 MB at the default) whatever
// the traffic, and one round trip per action.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Key is the Redis list of the entries, newest first.
const Key = "ctm:audit"

// DefaultMaxEntries bounds the list: months of operator actions.
const DefaultMaxEntries = 10000

// Actors.
const (
	// ActorAdminToken is a request with "Authorization: Bearer
	// ADMIN_TOKEN" (the admin realm): a script, ctm or curl.
	ActorAdminToken = "admin_token"
	// actorConsolePrefix is followed by a short hash of the session id.
	actorConsolePrefix = "console:"
	// ActorCLI is ctm acting on Redis directly (registry rotate-key).
	ActorCLI = "cli:ctm"
)

// Entry is one recorded action.
type Entry struct {
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`           // e.g. business.put, business.resume, dead_letters.redrive
	Target string    `json:"target,omitempty"` // the business id, or the redrive's filter
	Status int       `json:"status"`           // the API's answer
	// Changes name what changed: "dataset_id: 1 -> 2", "access_token
	// changed" (a secret by name only), "redriven: 3".
	Changes []string `json:"changes,omitempty"`
}

type actorKey struct{}

// WithActor returns ctx carrying actor; the console sets it on the
// in-process API requests a session makes. A context value, not a header:
// a request from the network cannot claim to be a console session.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorOf is the actor ctx carries, ActorAdminToken when none.
func ActorOf(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return ActorAdminToken
}

// ConsoleActor names a console session by a short hash of its id: enough
// to tell sessions apart, nothing that opens one.
func ConsoleActor(sessionID string) string {
	sum := sha256.Sum256([]byte("ctmpipe audit actor\x00" + sessionID))
	return actorConsolePrefix + hex.EncodeToString(sum[:4])
}

// Store keeps the entries in Redis.
type Store struct {
	rdb redis.UniversalClient
	max int
	// Now defaults to time.Now.
	Now func() time.Time
}

// NewStore returns a Store keeping the newest max entries (0: the default).
func NewStore(rdb redis.UniversalClient, max int) *Store {
	if max <= 0 {
		max = DefaultMaxEntries
	}
	return &Store{rdb: rdb, max: max, Now: time.Now}
}

// Record stores e (its Time set when zero) and trims the list, in one
// transaction.
func (s *Store) Record(ctx context.Context, e Entry) error {
	if e.Time.IsZero() {
		e.Time = s.Now().UTC()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, Key, b)
		p.LTrim(ctx, Key, 0, int64(s.max-1))
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit: record: %w", err)
	}
	return nil
}

// List returns up to limit entries, newest first, skipping offset.
func (s *Store) List(ctx context.Context, offset, limit int) ([]Entry, error) {
	raw, err := s.rdb.LRange(ctx, Key, int64(offset), int64(offset+limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	out := make([]Entry, 0, len(raw))
	for _, r := range raw {
		var e Entry
		if json.Unmarshal([]byte(r), &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}
