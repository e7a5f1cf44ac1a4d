package audit

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
)

// pending is what a handler adds to its request's entry.
type pending struct {
	target  string
	changes []string
	skip    bool
}

// Note adds what changed to the entry of c's request (no-op outside the
// middleware). Name secrets, never give their values.
func Note(c echo.Context, changes ...string) {
	if p, ok := c.Get(pendingKeyName).(*pending); ok {
		p.changes = append(p.changes, changes...)
	}
}

// Target sets the entry's target when the path has no business id (a
// redrive names its selection).
func Target(c echo.Context, target string) {
	if p, ok := c.Get(pendingKeyName).(*pending); ok {
		p.target = target
	}
}

// Skip leaves c's request out of the log: it changed nothing (a dry run).
func Skip(c echo.Context) {
	if p, ok := c.Get(pendingKeyName).(*pending); ok {
		p.skip = true
	}
}

const pendingKeyName = "ctm.audit.pending"

// actions names the audited routes; a state-changing route not listed is
// recorded by its method and path.
var actions = map[string]string{
	"PUT /v1/businesses/:business_id":         "business.put",
	"DELETE /v1/businesses/:business_id":      "business.delete",
	"PATCH /v1/businesses/:business_id":       "business.patch",
	"POST /v1/businesses/:business_id/resume": "business.resume",
	"POST /v1/dead-letters/redrive":           "dead_letters.redrive",
}

// Middleware records every request other than GET, HEAD and OPTIONS that
// the API answered 2xx, after its handler: time, actor (ActorOf), action,
// the business id of the path (or the query, for a redrive) and the
// changes the handler noted. A failed record is logged, and the answer
// stands: the action is done.
func Middleware(s *Store, log *zap.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			switch c.Request().Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
				return next(c)
			}
			p := &pending{}
			c.Set(pendingKeyName, p)
			err := next(c)
			status := c.Response().Status
			if err != nil {
				var he *echo.HTTPError
				if errors.As(err, &he) {
					status = he.Code
				} else {
					status = http.StatusInternalServerError
				}
			}
			if status < 200 || status > 299 || p.skip {
				return err
			}
			route := c.Request().Method + " " + c.Path()
			action, ok := actions[route]
			if !ok {
				action = route
			}
			target := c.Param("business_id")
			if target == "" {
				target = p.target
			}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), 2*time.Second)
			defer cancel()
			e := Entry{Actor: ActorOf(c.Request().Context()), Action: action, Target: target, Status: status, Changes: p.changes}
			if rerr := s.Record(ctx, e); rerr != nil && log != nil {
				log.Error("audit entry not stored", zap.String("action", action), zap.String("actor", e.Actor), zap.Error(rerr))
			}
			return err
		}
	}
}

// Register mounts GET /v1/audit?offset=&limit= (limit 1-500, default 100)
// on g: {"entries": [...]} newest first.
func Register(g *echo.Group, s *Store) {
	g.GET("/v1/audit", func(c echo.Context) error {
		offset, limit := 0, 100
		if v := c.QueryParam("offset"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return echo.NewHTTPError(http.StatusBadRequest, "offset: want a number of entries to skip, 0 or more")
			}
			offset = n
		}
		if v := c.QueryParam("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 500 {
				return echo.NewHTTPError(http.StatusBadRequest, "limit: want a number from 1 to 500")
			}
			limit = n
		}
		entries, err := s.List(c.Request().Context(), offset, limit)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"entries": entries})
	})
}
