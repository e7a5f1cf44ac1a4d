// Package opsapi is the admin HTTP API that says what became of
// conversions: an event's trail, the dead letters (list, show, redrive) and
// the per-minute stats. Register mounts it on the admin listener's API()
// group, which authenticates with ADMIN_TOKEN. Health implements
// registryapi.HealthSource from the same data.
//
// No answer carries a personal id (wa_id, BSUID, PSID, IGSID, ctwa_clid)
// unless reveal=1 asks for a dead letter's message as published.
package opsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/internal/audit"
	"github.com/ctmpipe/ctmpipe/internal/forward"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/ledger"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// Deps are what the handlers read. Redis is required.
type Deps struct {
	Redis redis.UniversalClient // the senders' Redis: trails, stats, the ledger
	// JS reads and redrives stream DLQ; nil: the dead-letter routes answer
	// 503.
	JS      jetstream.JetStream
	Log     *zap.Logger      // nil: none
	Now     func() time.Time // nil: time.Now
	SentTTL time.Duration    // how long the senders keep trails (SENT_TTL); 0: ledger.DefaultSentTTL
	Timeout time.Duration    // per request; default 30 s
}

// Limits of a dead-letter page.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

type api struct{ Deps }

// Register mounts on g:
//
//	GET  /v1/events/:business_id/*event_id   an event's trail (the id whole, '/' and all)
//	GET  /v1/dead-letters?reason=&business=&since=&limit=&cursor=
//	GET  /v1/dead-letters/:seq?reveal=1
//	POST /v1/dead-letters/redrive
//	GET  /v1/stats?window=1h|24h
//	GET  /v1/businesses/{business_id}/attempts?offset=&limit=
func Register(g *echo.Group, d Deps) {
	if d.Redis == nil {
		panic("opsapi: Register without Redis")
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Timeout <= 0 {
		d.Timeout = 30 * time.Second
	}
	if d.SentTTL <= 0 {
		d.SentTTL = ledger.DefaultSentTTL
	}
	a := &api{d}
	// The event id is the rest of the path, whole: an order system's ids
	// hold '/' ("ord/42", sent as ord%2F42 or not) and '='.
	g.GET("/v1/events/:business_id/*", a.event)
	g.GET("/v1/dead-letters", a.listLetters)
	g.POST("/v1/dead-letters/redrive", a.redrive)
	g.GET("/v1/dead-letters/:seq", a.showLetter)
	g.GET("/v1/stats", a.stats)
	g.GET("/v1/businesses/:business_id/attempts", a.attempts)
	g.GET("/v1/businesses/:business_id/parked", a.parked)
}

func fail(status int, msg string) error { return &admin.Error{Status: status, Message: msg} }

func (a *api) ctx(c echo.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Request().Context(), a.Timeout)
}

func (a *api) event(c echo.Context) error {
	business, eventID, err := eventPath(c)
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	r, err := trail.Read(ctx, a.Redis, business, eventID, a.SentTTL, a.Now())
	if errors.Is(err, trail.ErrNotFound) {
		// A WhatsApp phone_number_id stands for its WABA (the registry's
		// phone_number_ids): the trail is kept under the WABA's id.
		if waba, perr := registry.NewStore(a.Redis, nil).BusinessForPhone(ctx, business); perr == nil && waba != business {
			if r, err = trail.Read(ctx, a.Redis, waba, eventID, a.SentTTL, a.Now()); err == nil {
				c.Response().Header().Set("Ctm-Resolved-Business", waba)
				return c.JSON(http.StatusOK, r)
			}
		}
	}
	if errors.Is(err, trail.ErrNotFound) {
		return fail(http.StatusNotFound, "no trail for this event: the sender has not taken it in yet, its trail is older than SENT_TTL, "+
			"or the sender runs with TRAIL=false; check business_id and event_id as published")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// eventPath returns the business id and the event id of an event's path.
// Echo routes on the escaped path (RawPath) when the request has one, and
// its parameters are then escaped too ("ord%2F42"): they are unescaped
// here. Without escapes, the wildcard holds the id with its '/' already.
func eventPath(c echo.Context) (string, string, error) {
	business, eventID := c.Param("business_id"), c.Param("*")
	if c.Request().URL.RawPath != "" {
		var err1, err2 error
		business, err1 = url.PathUnescape(business)
		eventID, err2 = url.PathUnescape(eventID)
		if err1 != nil || err2 != nil {
			return "", "", fail(http.StatusBadRequest, "the path is not validly escaped")
		}
	}
	if business == "" || eventID == "" {
		return "", "", fail(http.StatusBadRequest, "want /v1/events/{business_id}/{event_id}, the event_id path-escaped")
	}
	return business, eventID, nil
}

// letterJSON is a listed dead letter.
type letterJSON struct {
	sender.DeadLetterInfo
	Time trail.Time `json:"time"`
}

func toJSON(l sender.DeadLetterInfo) letterJSON {
	return letterJSON{DeadLetterInfo: l, Time: trail.At(l.Time)}
}

func (a *api) needJS() error {
	if a.JS == nil {
		return fail(http.StatusServiceUnavailable, "dead letters need NATS: set NATS_URL for this admin listener")
	}
	return nil
}

func (a *api) listLetters(c echo.Context) error {
	if err := a.needJS(); err != nil {
		return err
	}
	f, err := a.filter(c.QueryParam("reason"), c.QueryParam("business"), c.QueryParam("since"))
	if err != nil {
		return err
	}
	limit := DefaultLimit
	if v := c.QueryParam("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > MaxLimit {
			return fail(http.StatusBadRequest, "limit must be between 1 and 1000")
		}
	}
	if v := c.QueryParam("cursor"); v != "" {
		if f.Before, err = strconv.ParseUint(v, 10, 64); err != nil || f.Before == 0 {
			return fail(http.StatusBadRequest, "cursor must be the next_cursor of the previous page")
		}
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	letters, more, err := sender.ListDeadLetters(ctx, a.JS, f, limit)
	if err != nil {
		return err
	}
	out := struct {
		DeadLetters []letterJSON `json:"dead_letters"`
		NextCursor  string       `json:"next_cursor,omitempty"`
	}{DeadLetters: make([]letterJSON, 0, len(letters))}
	for _, l := range letters {
		out.DeadLetters = append(out.DeadLetters, toJSON(l))
	}
	if more && len(letters) > 0 {
		out.NextCursor = strconv.FormatUint(letters[len(letters)-1].Seq, 10)
	}
	return c.JSON(http.StatusOK, out)
}

// filter reads the common selectors.
func (a *api) filter(reason, business, since string) (sender.DeadLetterFilter, error) {
	f := sender.DeadLetterFilter{Reason: reason, Business: business}
	if reason != "" && !isReason(reason) {
		return f, fail(http.StatusBadRequest, "unknown reason: want one of "+strings.Join(sender.ListReasons, ", "))
	}
	t, err := sender.ParseSince(since, a.Now())
	if err != nil {
		return f, fail(http.StatusBadRequest, "since: "+err.Error())
	}
	f.Since = t
	return f, nil
}

func isReason(r string) bool {
	for _, x := range sender.ListReasons {
		if x == r {
			return true
		}
	}
	return false
}

func (a *api) showLetter(c echo.Context) error {
	if err := a.needJS(); err != nil {
		return err
	}
	seq, err := strconv.ParseUint(c.Param("seq"), 10, 64)
	if err != nil || seq == 0 {
		return fail(http.StatusBadRequest, "seq must be a dead letter's sequence (the seq of GET /v1/dead-letters)")
	}
	reveal := c.QueryParam("reveal") == "1" || c.QueryParam("reveal") == "true"
	ctx, cancel := a.ctx(c)
	defer cancel()
	info, msg, err := sender.ShowDeadLetter(ctx, a.JS, seq, reveal)
	if errors.Is(err, sender.ErrNoDeadLetter) {
		return fail(http.StatusNotFound, "no dead letter with this sequence: it was redriven, aged out (14 days) or never existed")
	}
	if err != nil {
		return err
	}
	if reveal {
		a.Log.Info("dead letter revealed", zap.Uint64("dlq_seq", seq))
	}
	return c.JSON(http.StatusOK, struct {
		letterJSON
		Message any `json:"message"`
	}{toJSON(info), msg})
}

// redriveRequest is POST /v1/dead-letters/redrive's body.
type redriveRequest struct {
	Reason   string   `json:"reason"`
	Business string   `json:"business"`
	Seqs     []uint64 `json:"seqs"`
	Since    string   `json:"since"`
	Limit    int      `json:"limit"`
	DryRun   bool     `json:"dry_run"`
	Force    bool     `json:"force"`
}

// redriveSelection names a redrive's selection for the audit log.
func redriveSelection(r redriveRequest) string {
	var parts []string
	if r.Business != "" {
		parts = append(parts, "business="+r.Business)
	}
	if r.Reason != "" {
		parts = append(parts, "reason="+r.Reason)
	}
	if len(r.Seqs) > 0 {
		seqs := make([]string, len(r.Seqs))
		for i, q := range r.Seqs {
			seqs[i] = strconv.FormatUint(q, 10)
		}
		parts = append(parts, "seqs="+strings.Join(seqs, ","))
	}
	if r.Since != "" {
		parts = append(parts, "since="+r.Since)
	}
	return strings.Join(parts, " ")
}

func (a *api) redrive(c echo.Context) error {
	if err := a.needJS(); err != nil {
		return err
	}
	var req redriveRequest
	dec := jsonDecoder(c)
	if err := dec.Decode(&req); err != nil {
		return fail(http.StatusBadRequest, "body must be JSON such as {\"reason\":\"rejected\",\"dry_run\":true}")
	}
	if req.Reason == "" && req.Business == "" && len(req.Seqs) == 0 {
		return fail(http.StatusBadRequest, "select with at least one of reason, business or seqs")
	}
	f, err := a.filter(req.Reason, req.Business, req.Since)
	if err != nil {
		return err
	}
	if req.Limit < 0 {
		return fail(http.StatusBadRequest, "limit must not be negative")
	}
	if f.Reason == sender.ReasonForward && f.Business != "" {
		return fail(http.StatusBadRequest, "forward dead letters are webhook bodies with no business_id: select them by reason, since or seqs")
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	var matched, redriven int
	// Conversions go back to CONVERSIONS (sender.Redrive), forwarded
	// webhook bodies to stream FORWARD for their own destination
	// (forward.Redrive); sequences may name either kind.
	if f.Reason != sender.ReasonForward {
		opts := sender.RedriveOptions{Business: f.Business, Seqs: req.Seqs, From: f.Since, Limit: req.Limit,
			DryRun: req.DryRun, Force: req.Force, TakeOvers: ledger.New(a.Redis, ledger.DefaultSentTTL),
			By: audit.ActorOf(c.Request().Context())}
		if f.Reason != "" {
			opts.Reasons = []string{f.Reason}
		}
		res, err := sender.Redrive(ctx, a.JS, opts)
		if errors.Is(err, sender.ErrNeedForce) {
			return fail(http.StatusBadRequest, "in_doubt needs \"force\": true: those events may already be at Meta, which does not deduplicate them; check Events Manager first")
		}
		if err != nil {
			return err
		}
		matched, redriven = res.Matched, res.Republished
	}
	if f.Reason == sender.ReasonForward || (f.Reason == "" && f.Business == "" && len(req.Seqs) > 0) {
		limit := req.Limit
		if limit > 0 {
			limit = max(limit-matched, 0)
			if limit == 0 {
				limit = -1 // the conversions took the whole limit
			}
		}
		if limit >= 0 {
			res, err := forward.Redrive(ctx, a.JS, forward.RedriveOptions{Seqs: req.Seqs, From: f.Since, Limit: limit, DryRun: req.DryRun})
			if err != nil {
				return err
			}
			matched, redriven = matched+res.Matched, redriven+res.Republished
		}
	}
	if req.DryRun {
		audit.Skip(c)
	}
	audit.Target(c, redriveSelection(req))
	audit.Note(c, fmt.Sprintf("matched: %d", matched), fmt.Sprintf("redriven: %d", redriven))
	if req.Force {
		audit.Note(c, "force: in_doubt events sent again")
	}
	a.Log.Info("dead letters redriven", zap.Int("matched", matched), zap.Int("redriven", redriven),
		zap.Bool("dry_run", req.DryRun), zap.String("reason", req.Reason), zap.String("business_id", req.Business))
	return c.JSON(http.StatusOK, map[string]any{"matched": matched, "redriven": redriven, "dry_run": req.DryRun})
}

func (a *api) stats(c echo.Context) error {
	w := c.QueryParam("window")
	if w == "" {
		w = "1h"
	}
	if w != "1h" && w != "24h" {
		return fail(http.StatusBadRequest, "window must be 1h or 24h")
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	st, err := trail.ReadStats(ctx, a.Redis, w, a.Now())
	var re redis.Error
	if errors.As(err, &re) && strings.Contains(strings.ToLower(err.Error()), "unknown command") {
		return fail(http.StatusServiceUnavailable, "stats need a store that keeps hashes: Redis (REDIS_URL), or an embedded store that has them")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func jsonDecoder(c echo.Context) *json.Decoder {
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 64<<10))
	dec.DisallowUnknownFields()
	return dec
}
