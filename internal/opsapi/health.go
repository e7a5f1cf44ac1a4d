package opsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/registryapi"
	"github.com/ctmpipe/ctmpipe/internal/trail"
)

// Health is registryapi.HealthSource over the senders' Redis: the shared
// pause record and the counters of the last 24 h.
type Health struct {
	Redis redis.UniversalClient
	Now   func() time.Time // nil: time.Now
}

var _ registryapi.HealthSource = Health{}

// PauseKey is the shared pause record of business (written by the sender).
func PauseKey(business string) string { return "ctm:biz:{" + business + "}:paused" }

// pauseRecord is the JSON a sender stores under PauseKey; older senders
// store "1".
type pauseRecord struct {
	Since   int64  `json:"since"` // unix ms
	Code    int    `json:"code"`
	Subcode int    `json:"subcode"`
	Class   string `json:"class"`
	Message string `json:"message"`
	Fix     string `json:"fix"`
	Version string `json:"version"`
}

// ParsePause reads a pause record: JSON, or "1" (paused, why unknown).
func ParsePause(v string) *registryapi.Pause {
	var r pauseRecord
	if v == "" || json.Unmarshal([]byte(v), &r) != nil {
		return &registryapi.Pause{} // "1", or a record this version cannot read: paused all the same
	}
	p := &registryapi.Pause{Code: r.Code, Subcode: r.Subcode, Class: r.Class, Message: r.Message, Fix: r.Fix, Version: r.Version}
	if r.Since > 0 {
		p.Since = time.UnixMilli(r.Since).UTC()
	}
	return p
}

// Health implements registryapi.HealthSource: business's pause, and the
// counters of business and its aliases added up.
func (h Health) Health(ctx context.Context, business string, aliases []string) (registryapi.Health, error) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	var out registryapi.Health
	v, err := h.Redis.Get(ctx, PauseKey(business)).Result()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return out, fmt.Errorf("health: pause: %w", err)
	default:
		out.Paused = ParsePause(v)
	}
	b, err := trail.ReadBusiness(ctx, h.Redis, now(), append([]string{business}, aliases...)...)
	if err != nil {
		return out, fmt.Errorf("health: %w", err)
	}
	out.LastAccepted, out.Sent24h, out.DeadLettered24h = b.LastAccepted, b.Sent, b.DeadLetters
	out.Conversions24h, out.Contexts24h, out.Requests24h = b.Conversions, b.Contexts, b.Requests
	return out, nil
}
