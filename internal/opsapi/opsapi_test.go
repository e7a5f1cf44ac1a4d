package opsapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/internal/opsapi"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// GET /v1/stats answers the counters per step, by window; the dead-letter
// routes say what they need without NATS; everything needs the token.
func TestStatsAndNoNATS(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	now := time.Date(2026, 12, 2, 10, 30, 0, 0, time.UTC)
	w := trail.NewWriter(time.Hour)
	w.Count("1001", now, trail.FieldSent, 7)
	w.Count("", now.Add(-10*time.Minute), trail.FieldWebhooks, 3)
	w.Latency(now, 210*time.Millisecond)
	if err := w.Flush(t.Context(), rdb); err != nil {
		t.Fatal(err)
	}
	adm := admin.New(admin.Config{Token: "tok"}, zap.NewNop(), prometheus.NewRegistry())
	opsapi.Register(adm.API(), opsapi.Deps{Redis: rdb, Now: func() time.Time { return now }})
	srv := httptest.NewServer(adm.Handler())
	defer srv.Close()

	code, body := get(t, srv.URL+"/v1/stats?window=1h", "tok")
	var st struct {
		Window      string             `json:"window"`
		StepSeconds int                `json:"step_seconds"`
		Start       string             `json:"start"`
		Series      map[string][]int64 `json:"series"`
		Outcomes    map[string]int64   `json:"outcomes"`
		Latency     map[string]int     `json:"graph_latency_ms"`
	}
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("GET /v1/stats = %d %s", code, body)
	}
	if st.Window != "1h" || st.StepSeconds != 60 || st.Start != "2026-12-02T09:31:00.000Z" || st.Series["sent"][59] != 7 ||
		st.Series["webhooks"][49] != 3 || st.Outcomes["sent"] != 7 || st.Latency["p50"] != 300 || len(st.Series["dead_letters"]) != 60 {
		t.Errorf("stats = %+v", st)
	}
	if code, body := get(t, srv.URL+"/v1/stats?window=24h", "tok"); code != 200 || !strings.Contains(body, `"step_seconds":3600`) {
		t.Errorf("24h = %d %s", code, body)
	}
	if code, _ := get(t, srv.URL+"/v1/stats?window=2d", "tok"); code != 400 {
		t.Errorf("window=2d: %d; want 400", code)
	}
	if code, _ := get(t, srv.URL+"/v1/stats", ""); code != 401 {
		t.Errorf("no token: %d; want 401", code)
	}
	if code, body := get(t, srv.URL+"/v1/dead-letters", "tok"); code != 503 || !strings.Contains(body, "NATS_URL") {
		t.Errorf("dead letters without NATS = %d %s; want 503 naming NATS_URL", code, body)
	}
}

// Health reads the pause record (JSON, or an older sender's "1") and the
// business's counters of the last 24 h, with those of its aliases (a
// WABA's phone_number_ids, under which conversions may be published)
// added.
func TestHealth(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	now := time.Now()
	w := trail.NewWriter(time.Hour)
	w.Count("1001", now, trail.FieldSent, 5)
	w.Count("1001", now.Add(-3*time.Hour), trail.FieldDeadLetter+"rejected", 2)
	w.Count("1001", now.Add(-25*time.Hour), trail.FieldSent, 100) // outside the 24 h
	w.Count("1001", now, trail.FieldConversions, 8)
	w.Count("1001", now, trail.FieldContexts, 9)
	w.Accepted("1001", now.Add(-time.Minute))
	// Published with the phone_number_id 77001 of WABA 1001: counted under it.
	w.Count("77001", now, trail.FieldConversions, 3)
	w.Count("77001", now, trail.FieldDeadLetter+"unattributed", 1)
	w.Count("88002", now, trail.FieldConversions, 50) // another WABA's number
	w.Accepted("77001", now)
	if err := w.Flush(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	since := time.UnixMilli(now.Add(-time.Hour).UnixMilli()).UTC()
	rec := `{"since":` + jsonInt(since.UnixMilli()) + `,"code":190,"subcode":463,"class":"token","message":"Error validating access token"}`
	if err := rdb.Set(ctx, opsapi.PauseKey("1001"), rec, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	h, err := opsapi.Health{Redis: rdb}.Health(ctx, "1001", nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Paused == nil || h.Paused.Code != 190 || h.Paused.Subcode != 463 || h.Paused.Class != "token" || !h.Paused.Since.Equal(since) ||
		h.Paused.Message == "" || h.Sent24h != 5 || h.DeadLettered24h["rejected"] != 2 || h.Conversions24h != 8 || h.Contexts24h != 9 ||
		h.LastAccepted == nil {
		t.Errorf("Health = %+v (paused %+v)", h, h.Paused)
	}
	withAlias, err := opsapi.Health{Redis: rdb}.Health(ctx, "1001", []string{"77001"})
	if err != nil {
		t.Fatal(err)
	}
	if withAlias.Conversions24h != 11 || withAlias.DeadLettered24h["unattributed"] != 1 || withAlias.DeadLettered24h["rejected"] != 2 ||
		withAlias.Sent24h != 5 || withAlias.LastAccepted == nil || !withAlias.LastAccepted.Equal(time.UnixMilli(now.UnixMilli()).UTC()) {
		t.Errorf("with the alias 77001: %+v; want conversions 8+3, unattributed 1, the alias's later last_accepted", withAlias)
	}
	b, _ := json.Marshal(h)
	for _, k := range []string{`"last_accepted_at"`, `"sent_24h":5`, `"dead_letters_24h":{"rejected":2}`, `"conversions_24h":8`, `"contexts_24h":9`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("health JSON %s lacks %s", b, k)
		}
	}
	if err := rdb.Set(ctx, opsapi.PauseKey("2002"), "1", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if h, err := (opsapi.Health{Redis: rdb}).Health(ctx, "2002", nil); err != nil || h.Paused == nil || h.Sent24h != 0 {
		t.Errorf("old pause record: %+v, %v; want paused, why unknown", h, err)
	}
	if h, err := (opsapi.Health{Redis: rdb}).Health(ctx, "3003", nil); err != nil || h.Paused != nil {
		t.Errorf("not paused: %+v, %v", h, err)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestEventIDsWithSlash: an event id is taken whole from the path, '/'
// and '=' included, escaped (%2F, %3D: echo then routes on the escaped
// path) or not; before, ord/42 had "no trail".
func TestEventIDsWithSlash(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	now := time.Now().UTC() // the trail keys expire from the real clock
	w := trail.NewWriter(time.Hour)
	for _, id := range []string{"ord/42", "a=b/c", "plain"} {
		w.Put(&trail.Record{BusinessID: "1001", EventID: id, State: "sent", UpdatedAt: trail.At(now), FirstSeenAt: trail.At(now)})
	}
	if err := w.Flush(t.Context(), rdb); err != nil {
		t.Fatal(err)
	}
	adm := admin.New(admin.Config{Token: "tok"}, zap.NewNop(), prometheus.NewRegistry())
	opsapi.Register(adm.API(), opsapi.Deps{Redis: rdb, Now: func() time.Time { return now }})
	srv := httptest.NewServer(adm.Handler())
	defer srv.Close()
	for path, want := range map[string]string{
		"ord%2F42":  "ord/42",
		"ord/42":    "ord/42",
		"a%3Db%2Fc": "a=b/c",
		"a=b/c":     "a=b/c",
		"a%3Db/c":   "a=b/c",
		"plain":     "plain",
		"pl%61in":   "plain",
	} {
		code, body := get(t, srv.URL+"/v1/events/1001/"+path, "tok")
		var r trail.Record
		if err := json.Unmarshal([]byte(body), &r); code != http.StatusOK || err != nil || r.EventID != want {
			t.Errorf("GET /v1/events/1001/%s = %d %s; want the trail of %q", path, code, body, want)
		}
	}
	if code, body := get(t, srv.URL+"/v1/events/1001/", "tok"); code != http.StatusBadRequest {
		t.Errorf("no event id = %d %s; want 400", code, body)
	}
}

// A WhatsApp phone_number_id in the path resolves to its WABA (the
// registry's phone_number_ids) when no trail is kept under it.
func TestEventByPhoneNumberID(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	now := time.Now().UTC()
	store := registry.NewStore(rdb, nil)
	if _, err := store.Put(t.Context(), registry.Business{ID: "104200000000077", Channel: registry.WhatsApp,
		DatasetID: "900000000000077", PhoneNumberIDs: []string{"106500000000077"}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	w := trail.NewWriter(time.Hour)
	w.Put(&trail.Record{BusinessID: "104200000000077", EventID: "ord-1", State: "sent", UpdatedAt: trail.At(now), FirstSeenAt: trail.At(now)})
	if err := w.Flush(t.Context(), rdb); err != nil {
		t.Fatal(err)
	}
	adm := admin.New(admin.Config{Token: "tok"}, zap.NewNop(), prometheus.NewRegistry())
	opsapi.Register(adm.API(), opsapi.Deps{Redis: rdb, Now: func() time.Time { return now }})
	srv := httptest.NewServer(adm.Handler())
	defer srv.Close()
	code, body := get(t, srv.URL+"/v1/events/106500000000077/ord-1", "tok")
	var r trail.Record
	if err := json.Unmarshal([]byte(body), &r); code != http.StatusOK || err != nil || r.BusinessID != "104200000000077" {
		t.Errorf("GET by phone_number_id = %d %s; want the WABA's trail", code, body)
	}
	if code, _ := get(t, srv.URL+"/v1/events/106500000000099/ord-1", "tok"); code != http.StatusNotFound {
		t.Errorf("unknown phone_number_id = %d; want 404", code)
	}
}
