package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/internal/opsapi"
	"github.com/ctmpipe/ctmpipe/internal/trail"
)

const testToken = "test-admin-token-0123456789"

// adminAPI is the real admin listener (internal/admin: bearer auth) with
// the real event-trail API (internal/opsapi) over a store holding one
// trail, event ord/42 of business 1001, and a contexts route answering as
// ingest's does for one conversation.
func adminAPI(t *testing.T) string {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	now := time.Now()
	w := trail.NewWriter(time.Hour)
	w.Put(&trail.Record{BusinessID: "1001", EventID: "ord/42", State: "sent", Attempts: 1, FirstSeenAt: trail.At(now),
		UpdatedAt: trail.At(now), EventName: "Purchase", Channel: "whatsapp",
		Sent: &trail.SentTo{DatasetID: "555", At: trail.At(now), FBTraceID: "AbC123", EventsReceived: 1}})
	if err := w.Flush(t.Context(), rdb); err != nil {
		t.Fatal(err)
	}
	srv := admin.New(admin.Config{Token: testToken}, zap.NewNop(), prometheus.NewRegistry())
	opsapi.Register(srv.API(), opsapi.Deps{Redis: rdb})
	srv.API().GET("/v1/contexts/:channel/:business_id/:user_id", func(c echo.Context) error {
		if c.Param("channel") != "whatsapp" || c.Param("business_id") != "1001" || c.Param("user_id") != "16315551234" {
			return &admin.Error{Status: http.StatusNotFound, Message: "no context"}
		}
		return c.JSON(http.StatusOK, map[string]any{"channel": "whatsapp", "business_id": "1001", "user_id": "16315551234",
			"ctwa_clid": "ARAkLkA8rmlFeiCktEJQ", "no_click_id": false, "expires_at": "2031-01-01T00:00:00Z"})
	})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

// ctm events show and contexts show ask the admin API and print its
// answer as a table of fields or as JSON; an event id with '/' is asked for
// whole; a wrong token is the API's 401, said.
func TestEventsAndContexts(t *testing.T) {
	url := adminAPI(t)
	e := map[string]string{"ADMIN_URL": url, "ADMIN_TOKEN": testToken}

	out, err := ctm(t, e, "events", "show", "1001", "ord/42")
	for _, want := range []string{"FIELD", "state", "sent", "sent.fbtrace_id", "AbC123", "event_id"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("events show 1001 ord/42 = %v:\n%s\nwant %q in it", err, out, want)
		}
	}
	out, err = ctm(t, map[string]string{"ADMIN_TOKEN": testToken}, "events", "show", "-admin-url", url, "-o", "json", "1001", "ord/42")
	var rec trail.Record
	if err != nil || json.Unmarshal([]byte(out), &rec) != nil || rec.EventID != "ord/42" || rec.State != "sent" || rec.Sent == nil {
		t.Errorf("events show -o json = %v:\n%s", err, out)
	}
	if _, err := ctm(t, e, "events", "show", "1001", "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("events show of an unknown event = %v; want the API's 404", err)
	}

	out, err = ctm(t, e, "contexts", "show", "whatsapp", "1001", "16315551234")
	for _, want := range []string{"ctwa_clid", "ARAkLkA8rmlFeiCktEJQ", "expires_at", "no_click_id  false"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("contexts show = %v:\n%s\nwant %q in it", err, out, want)
		}
	}
	out, err = ctm(t, e, "-o", "json", "contexts", "show", "whatsapp", "1001", "16315551234")
	var ctx map[string]any
	if err != nil || json.Unmarshal([]byte(out), &ctx) != nil || ctx["ctwa_clid"] != "ARAkLkA8rmlFeiCktEJQ" {
		t.Errorf("contexts show -o json = %v:\n%s", err, out)
	}

	if _, err := ctm(t, map[string]string{"ADMIN_URL": url, "ADMIN_TOKEN": "wrong-token-0123456789"}, "events", "show", "1001", "ord/42"); err == nil ||
		!strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("events show with a wrong token = %v; want the 401, without the token", err)
	}
	for _, args := range [][]string{{"events", "show", "1001"}, {"contexts", "show", "whatsapp", "1001"}, {"events", "list"}} {
		if _, err := ctm(t, e, args...); err == nil {
			t.Errorf("ctm %q = nil; want an error", args)
		}
	}
	if _, err := ctm(t, map[string]string{"ADMIN_URL": url}, "contexts", "show", "whatsapp", "1001", "16315551234"); err == nil ||
		!strings.Contains(err.Error(), "ADMIN_TOKEN") {
		t.Errorf("contexts show without ADMIN_TOKEN = %v; want it named", err)
	}
}

// ctm -h and ctm COMMAND -h print the usage, which names every command.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {}, {"dlq", "list", "-h"}, {"streams", "-h"}} {
		out, err := ctm(t, nil, args...)
		if err == nil || !strings.Contains(err.Error(), "help requested") {
			t.Errorf("ctm %q = %v; want flag.ErrHelp", args, err)
		}
		for _, want := range []string{"dlq list", "dlq show", "dlq redrive", "events show", "contexts show", "streams", "-admin-url", "-nats-url", "-o FORMAT"} {
			if !strings.Contains(out, want) {
				t.Errorf("ctm %q printed no %q", args, want)
			}
		}
	}
}
