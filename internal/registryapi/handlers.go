package registryapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/audit"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

func (a *api) ctx(c echo.Context) (context.Context, context.CancelFunc) {
	c.Response().Header().Set("Cache-Control", "no-store")
	return context.WithTimeout(c.Request().Context(), a.Timeout)
}

// pathID is the business id of the path, checked.
func pathID(c echo.Context) (string, error) {
	id := c.Param("business_id")
	if err := registry.ValidID("business_id", id); err != nil {
		return "", err
	}
	return id, nil
}

// put answers PUT /v1/businesses/{business_id}. Without dataset_id the
// dataset is resolved (or created) with the Dataset API before anything is
// stored, with the business's token or the default one.
func (a *api) put(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return a.fail(c, err)
	}
	req, err := decodePut(c.Request())
	if err != nil {
		return a.fail(c, err)
	}
	b := req.business(id)
	if err := b.Validate(); err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	resolved := false
	if b.DatasetID == "" {
		token := b.AccessToken.Reveal()
		if token == "" {
			token = a.DefaultToken
		}
		switch {
		case a.Datasets == nil:
			return a.fail(c, badRequest("dataset_id", "dataset_id: required, as this server has no Dataset API to resolve it with"))
		case token == "":
			return a.fail(c, badRequest("dataset_id", "dataset_id: required when the business has no access_token and CAPI_ACCESS_TOKEN is not set"))
		}
		var ds string
		var err error
		if cr, ok := a.Datasets.(credentialResolver); ok && b.AccessToken.IsSet() && b.AppSecret.IsSet() {
			// The proof of the business's token is keyed with the
			// business's own app secret (the app that issued the token).
			ds, err = cr.DatasetAs(ctx, id, capi.Credentials{Token: token, AppSecret: b.AppSecret.Reveal()})
		} else {
			ds, err = a.Datasets.Dataset(ctx, id, token)
		}
		if err != nil {
			return a.fail(c, datasetError(id, err, token, b.AppSecret.Reveal(), a.DefaultToken))
		}
		if registry.ValidID("dataset_id", ds) != nil {
			return a.fail(c, &httpError{status: http.StatusBadGateway, body: errorBody{Field: "dataset_id",
				Error: "the Dataset API answered a dataset id that is not a Meta id: give dataset_id"}})
		}
		b.DatasetID, resolved = ds, true
	}
	old, oldErr := a.Store.Get(ctx, id)
	created, err := a.Store.Put(ctx, b)
	if err != nil {
		return a.fail(c, err)
	}
	audit.Note(c, changes(old, oldErr, b)...)
	a.Log.Info("business stored", zap.String("business_id", id), zap.String("channel", string(b.Channel)),
		zap.Bool("created", created), zap.Bool("dataset_resolved", resolved),
		zap.Bool("access_token_set", b.AccessToken.IsSet()), zap.Bool("app_secret_set", b.AppSecret.IsSet()),
		zap.Bool("enabled", b.Enabled))
	stored, err := a.Store.Get(ctx, id)
	if err != nil {
		return a.fail(c, err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, toJSON(stored))
}

// get answers GET /v1/businesses/{business_id} with the record and its
// health; a failing health source leaves health unavailable, not the record.
func (a *api) get(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	b, err := a.Store.Get(ctx, id)
	if err != nil {
		return a.fail(c, err)
	}
	out := toJSON(b)
	// A WhatsApp conversion may be published with a phone_number_id as its
	// business_id: what is counted under those belongs to the WABA.
	h, err := a.Health.Health(ctx, id, b.PhoneNumberIDs)
	if err != nil {
		if !errors.Is(err, ErrNoHealth) {
			a.Log.Warn("business health unavailable", zap.String("business_id", id), zap.Error(err))
		}
		out.Health = &healthJSON{Reason: err.Error()}
	} else {
		if h.DeadLettered24h == nil {
			h.DeadLettered24h = map[string]int64{}
		}
		out.Health = &healthJSON{Available: true, Health: &h}
	}
	return c.JSON(http.StatusOK, out)
}

// list answers GET /v1/businesses?cursor=&limit=.
func (a *api) list(c echo.Context) error {
	limit := 0
	if s := c.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return a.fail(c, badRequest("limit", "limit: must be a number from 1 to "+strconv.Itoa(registry.MaxPageSize)))
		}
		limit = n
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	p, err := a.Store.List(ctx, c.QueryParam("cursor"), limit)
	if err != nil {
		return a.fail(c, err)
	}
	out := listJSON{Businesses: make([]businessJSON, 0, len(p.Businesses)+len(p.Unreadable)), NextCursor: p.Next}
	for _, b := range p.Businesses {
		out.Businesses = append(out.Businesses, toJSON(b))
	}
	for _, u := range p.Unreadable {
		a.Log.Warn("registry record unreadable", zap.String("business_id", u.ID), zap.String("key_id", u.KeyID), zap.Error(u.Err))
		out.Businesses = append(out.Businesses, businessJSON{BusinessID: u.ID, Unreadable: true, KeyID: u.KeyID,
			PhoneNumberIDs: []string{}, Error: unreadableText(u.Err)})
	}
	// Both are in id order; the page is too.
	slices.SortStableFunc(out.Businesses, func(x, y businessJSON) int { return strings.Compare(x.BusinessID, y.BusinessID) })
	return c.JSON(http.StatusOK, out)
}

// delete answers DELETE /v1/businesses/{business_id}.
func (a *api) delete(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	if err := a.Store.Delete(ctx, id); err != nil {
		return a.fail(c, err)
	}
	a.Log.Info("business deleted", zap.String("business_id", id))
	audit.Note(c, "deleted")
	return c.NoContent(http.StatusNoContent)
}

// resumeJSON is the answer of a resume that ended a pause.
type resumeJSON struct {
	BusinessID string `json:"business_id"`
	WasPaused  bool   `json:"was_paused"`
	Parked     int    `json:"parked"`
	Note       string `json:"note"`
}

// resume answers POST /v1/businesses/{business_id}/resume: 202 when a pause
// ended or parked messages are going back (they are sent asynchronously),
// 204 when there was nothing to resume.
func (a *api) resume(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	if _, err := a.Store.Get(ctx, id); err != nil {
		return a.fail(c, err)
	}
	if a.Resumer == nil {
		return a.fail(c, &httpError{status: http.StatusServiceUnavailable, body: errorBody{
			Error: "resume is not available: no sender is connected to this admin API (run the sender with the same REDIS_URL and NATS_URL)"}})
	}
	res, err := a.Resumer.Resume(ctx, id)
	if err != nil {
		return a.fail(c, &httpError{status: http.StatusServiceUnavailable, cause: err, body: errorBody{
			Error: "resume failed: " + err.Error() + "; try again"}})
	}
	a.Log.Info("business resumed", zap.String("business_id", id), zap.Bool("was_paused", res.WasPaused), zap.Int("parked", res.Parked))
	audit.Note(c, fmt.Sprintf("was_paused: %t", res.WasPaused), fmt.Sprintf("parked sent back: %d", res.Parked))
	if !res.WasPaused && res.Parked == 0 {
		return c.NoContent(http.StatusNoContent)
	}
	return c.JSON(http.StatusAccepted, resumeJSON{BusinessID: id, WasPaused: res.WasPaused, Parked: res.Parked,
		Note: "the pause is over on every sender; parked messages are being sent back"})
}

// unreadableText says why a listed record is unreadable and what to do.
// The registry's texts name ids and key ids, never a secret.
func unreadableText(err error) string {
	switch {
	case errors.Is(err, registry.ErrNoKey):
		return "its secrets are sealed and this server has no REGISTRY_KEY: set it"
	case errors.Is(err, registry.ErrDecrypt):
		return err.Error() + ": check REGISTRY_KEY (an older key may be missing), or PUT the record again with its secrets"
	}
	return err.Error() + ": PUT the record again"
}
