package opsapi

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// attempts answers GET /v1/businesses/{business_id}/attempts?offset=&limit=
// (limit 1-500, default 100): the business's Graph requests, newest first,
// from its attempt log (the newest trail.AttemptsPerBusiness, none older
// than 7 days).
func (a *api) attempts(c echo.Context) error {
	business := c.Param("business_id")
	if err := registry.ValidID("business_id", business); err != nil {
		return fail(http.StatusBadRequest, err.Error())
	}
	offset, limit := 0, 100
	if v := c.QueryParam("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fail(http.StatusBadRequest, "offset: want a number of requests to skip, 0 or more")
		}
		offset = n
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return fail(http.StatusBadRequest, "limit: want a number from 1 to 500")
		}
		limit = n
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	list, err := trail.ReadAttempts(ctx, a.Redis, business, offset, limit, a.Now())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{
		"business_id": business,
		"attempts":    list,
		"kept":        "the newest " + strconv.Itoa(trail.AttemptsPerBusiness) + " requests of the business, 7 days at most",
	})
}

// parked answers GET /v1/businesses/{business_id}/parked?limit= (1-500,
// default 100): how many conversions the business has parked (paused or
// disabled) and the oldest of them, by event id.
func (a *api) parked(c echo.Context) error {
	if err := a.needJS(); err != nil {
		return err
	}
	business := c.Param("business_id")
	if err := registry.ValidID("business_id", business); err != nil {
		return fail(http.StatusBadRequest, err.Error())
	}
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return fail(http.StatusBadRequest, "limit: want a number from 1 to 500")
		}
		limit = n
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	total, list, err := sender.ListParked(ctx, a.JS, business, limit)
	if err != nil {
		return err
	}
	if list == nil {
		list = []sender.Parked{}
	}
	return c.JSON(http.StatusOK, map[string]any{"business_id": business, "total": total, "parked": list,
		"note": "POST /v1/businesses/" + business + "/resume sends them back once the business is enabled and works"})
}
