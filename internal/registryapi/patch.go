package registryapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/audit"
)

// patch answers PATCH /v1/businesses/{business_id}: the fields of the body
// replace the stored record's, the others (the secrets among them) stay.
// It is how the console edits a business without ever holding its token:
// a form left blank sends no access_token. 404 for an unknown business
// (create it with PUT); strict JSON as PUT; dataset_id cannot be emptied.
func (a *api) patch(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	old, err := a.Store.Get(ctx, id)
	if err != nil {
		return a.fail(c, err)
	}
	enabled := old.Enabled
	base := putRequest{Channel: string(old.Channel), DatasetID: old.DatasetID, AccessToken: old.AccessToken.Reveal(),
		AppSecret: old.AppSecret.Reveal(), TestEventCode: old.TestEventCode, PhoneNumberIDs: old.PhoneNumberIDs,
		RequireReferral: old.RequireReferral, AutomaticEvents: old.AutomaticEvents, Attribution: string(old.Attribution),
		Enabled: &enabled, PartnerAgent: old.PartnerAgent}
	req, err := decodeOnto(c.Request(), base)
	if err != nil {
		return a.fail(c, err)
	}
	if req.DatasetID == "" {
		return a.fail(c, badRequest("dataset_id", "dataset_id: cannot be emptied by a PATCH; PUT the record without it to resolve it again"))
	}
	b := req.business(id)
	if err := b.Validate(); err != nil {
		return a.fail(c, err)
	}
	if _, err := a.Store.Put(ctx, b); err != nil {
		return a.fail(c, err)
	}
	audit.Note(c, changes(old, nil, b)...)
	a.Log.Info("business updated", zap.String("business_id", id), zap.Bool("enabled", b.Enabled),
		zap.Bool("access_token_set", b.AccessToken.IsSet()), zap.Bool("app_secret_set", b.AppSecret.IsSet()))
	stored, err := a.Store.Get(ctx, id)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(http.StatusOK, toJSON(stored))
}
