package audit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
)

func newStore(t *testing.T, max int) *Store {
	t.Helper()
	mr := miniredis.RunT(t)
	return NewStore(redis.NewClient(&redis.Options{Addr: mr.Addr()}), max)
}

// The middleware records successful changes with their actor and notes,
// and leaves out reads, refusals and dry runs.
func TestMiddleware(t *testing.T) {
	s := newStore(t, 0)
	e := echo.New()
	g := e.Group("", Middleware(s, nil))
	g.PUT("/v1/businesses/:business_id", func(c echo.Context) error {
		Note(c, "access_token changed")
		return c.NoContent(http.StatusOK)
	})
	g.GET("/v1/businesses/:business_id", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	g.DELETE("/v1/businesses/:business_id", func(c echo.Context) error {
		return echo.NewHTTPError(http.StatusNotFound, "no such business")
	})
	g.POST("/v1/dead-letters/redrive", func(c echo.Context) error {
		Target(c, "reason=rejected")
		if c.QueryParam("dry") != "" {
			Skip(c)
		}
		return c.NoContent(http.StatusOK)
	})
	do := func(ctx context.Context, method, path string) {
		req := httptest.NewRequestWithContext(ctx, method, path, nil)
		e.ServeHTTP(httptest.NewRecorder(), req)
	}
	ctx := t.Context()
	do(ctx, http.MethodPut, "/v1/businesses/101")
	do(ctx, http.MethodGet, "/v1/businesses/101")
	do(ctx, http.MethodDelete, "/v1/businesses/102")
	do(ctx, http.MethodPost, "/v1/dead-letters/redrive?dry=1")
	do(WithActor(ctx, ConsoleActor("session-1")), http.MethodPost, "/v1/dead-letters/redrive")
	got, err := s.List(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("entries = %+v; want the PUT and the real redrive", got)
	}
	redrive, put := got[0], got[1]
	if put.Action != "business.put" || put.Target != "101" || put.Actor != ActorAdminToken ||
		len(put.Changes) != 1 || put.Changes[0] != "access_token changed" || put.Status != 200 {
		t.Errorf("PUT entry = %+v", put)
	}
	if redrive.Action != "dead_letters.redrive" || redrive.Target != "reason=rejected" ||
		!strings.HasPrefix(redrive.Actor, "console:") || strings.Contains(redrive.Actor, "session-1") {
		t.Errorf("redrive entry = %+v; want the console session's hashed actor", redrive)
	}
}

// The list keeps the newest entries only.
func TestStoreBounded(t *testing.T) {
	s := newStore(t, 3)
	for _, a := range []string{"a1", "a2", "a3", "a4", "a5"} {
		if err := s.Record(t.Context(), Entry{Action: a}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.List(t.Context(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range got {
		names = append(names, e.Action)
	}
	if strings.Join(names, ",") != "a5,a4,a3" {
		t.Errorf("entries = %v; want the newest three, newest first", names)
	}
}

// GET /v1/audit says why it refuses a limit.
func TestRegisterLimits(t *testing.T) {
	s := newStore(t, 0)
	e := echo.New()
	Register(e.Group(""), s)
	for _, q := range []string{"limit=0", "limit=501", "offset=-1", "limit=x"} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/audit?"+q, nil))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "want") {
			t.Errorf("GET /v1/audit?%s = %d %s; want 400 saying why", q, rec.Code, rec.Body)
		}
	}
}
