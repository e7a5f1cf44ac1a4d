package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// contextJSON is the admin API's view of a stored context. Every field is
// always present so that engineers see at a glance what is missing (an
// empty ctwa_clid explains an unattributed WhatsApp conversion).
type contextJSON struct {
	Channel    string    `json:"channel"`
	BusinessID string    `json:"business_id"`
	UserID     string    `json:"user_id"`
	ClickID    string    `json:"ctwa_clid"`
	AdID       string    `json:"ad_id"`
	SourceType string    `json:"source_type"`
	SourceURL  string    `json:"source_url"`
	Ref        string    `json:"ref"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	// NoClickID: the WhatsApp referral came without ctwa_clid; its
	// conversions end as dead letter no_click_id.
	NoClickID bool `json:"no_click_id"`
	// Attribution is the policy the context was last written under.
	Attribution string `json:"attribution"`
	// RecordedAt is when the latest click was last written (a context
	// lives CONTEXT_TTL from then), ExpiresAt when it goes: a conversion
	// after it is unattributed. Both are absent when the store cannot say.
	RecordedAt *time.Time `json:"recorded_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
}

// getContext answers GET /v1/contexts/{channel}/{business_id}/{user_id}:
// engineers use it to see why a conversion was or was not attributed. For
// WhatsApp, business_id may be the WABA id or the phone_number_id.
func (s *Server) getContext(c echo.Context) error {
	if s.cfg.AdminToken == "" {
		// 404 rather than 503: the API is off by configuration, not down.
		return errAdminDisabled
	}
	if ok, err := s.adminAuthorized(c.Request()); err != nil {
		admin.SetRetryAfter(c.Response().Header(), err)
		return err
	} else if !ok {
		return errAdminAuth
	}
	k := attribution.Key{
		Channel:    c.Param("channel"),
		BusinessID: c.Param("business_id"),
		UserID:     c.Param("user_id"),
	}
	switch k.Channel {
	case attribution.WhatsApp, attribution.Messenger, attribution.Instagram:
	default:
		return errBadChannel
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.StoreTimeout)
	defer cancel()
	got, err := s.store.Get(ctx, k)
	if errors.Is(err, attribution.ErrNotFound) {
		return errNoContext
	}
	if err != nil {
		return storeError(err)
	}
	var recorded, expires *time.Time
	if exp, err := s.store.Expiry(ctx, got.Key); err == nil && !exp.IsZero() {
		e, r := exp.UTC().Truncate(time.Millisecond), exp.Add(-s.store.TTL()).UTC().Truncate(time.Millisecond)
		expires, recorded = &e, &r
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, contextJSON{
		RecordedAt:  recorded,
		ExpiresAt:   expires,
		Channel:     got.Channel,
		BusinessID:  got.BusinessID,
		UserID:      got.UserID,
		ClickID:     got.ClickID,
		AdID:        got.AdID,
		SourceType:  got.SourceType,
		SourceURL:   got.SourceURL,
		Ref:         got.Ref,
		FirstSeen:   got.FirstSeen.UTC(),
		LastSeen:    got.LastSeen.UTC(),
		NoClickID:   got.NoClickID,
		Attribution: attributionName(got.FirstTouch),
	})
}

// adminAuthorized checks "Authorization: Bearer <ADMIN_TOKEN>" in constant
// time, under the admin listener's limit on wrong tokens (admin.Check).
func (s *Server) adminAuthorized(req *http.Request) (bool, error) {
	return admin.CheckBearer(req, admin.RealmAdmin, [][sha256.Size]byte{sha256.Sum256([]byte(s.cfg.AdminToken))})
}

// attributionName is the registry's name of the policy a context was
// written under.
func attributionName(firstTouch bool) string {
	if firstTouch {
		return string(registry.FirstTouch)
	}
	return string(registry.LastTouch)
}
