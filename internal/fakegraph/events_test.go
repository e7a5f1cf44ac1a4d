package fakegraph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAcceptsValidEventsPerChannel(t *testing.T) {
	s := newTestServer(t, Options{Tokens: []string{"tok-a", "tok-b"}})
	a := postEvents(t, s, "tok-b", event("whatsapp", "w1"), event("messenger", "m1"),
		event("instagram", "i1", func(e map[string]any) { e["event_name"], e["custom_data"] = "ViewContent", nil }),
		event("messenger", "w1")) // a second w1: Meta takes it, the log counts it
	if a.Status != http.StatusOK || a.OK.EventsReceived != 4 || a.OK.FBTraceID == "" {
		t.Fatalf("answer = %d %s; want 200 with events_received 4", a.Status, a.Body)
	}
	evs := s.Events()
	if len(evs) != 4 || evs[0].DatasetID != "1" || evs[0].Token != "tok-b" || evs[2].Channel != "instagram" ||
		evs[1].EventName != "Purchase" || evs[0].EventTime != now.Unix() {
		t.Errorf("Events() = %+v", evs)
	}
	if got := s.CountByEventID(); got["w1"] != 2 || got["m1"] != 1 || got["i1"] != 1 {
		t.Errorf("CountByEventID() = %v; want w1:2 m1:1 i1:1", got)
	}
	if s.Requests() != 1 || s.Rejected() != 0 {
		t.Errorf("Requests, Rejected = %d, %d; want 1, 0", s.Requests(), s.Rejected())
	}
}

func TestRejectsWhatMetaRejects(t *testing.T) {
	del := func(keys ...string) func(map[string]any) {
		return func(e map[string]any) {
			for _, k := range keys {
				if i := strings.IndexByte(k, '.'); i > 0 {
					delete(e[k[:i]].(map[string]any), k[i+1:])
				} else {
					delete(e, k)
				}
			}
		}
	}
	setKV := func(k string, v any) func(map[string]any) { return func(e map[string]any) { e[k] = v } }
	tests := []struct {
		name string
		ev   map[string]any
		want string // part of the error message
	}{
		{"pixel event name Lead", event("whatsapp", "x", setKV("event_name", "Lead")), "event_name"},
		{"custom event name", event("whatsapp", "x", setKV("event_name", "Refund")), "event_name"},
		{"no event name", event("whatsapp", "x", del("event_name")), "event_name"},
		{"no event time", event("whatsapp", "x", del("event_time")), "event_time"},
		{"event time string", event("whatsapp", "x", setKV("event_time", "1763900600")), "event_time"},
		{"event time float", event("whatsapp", "x", setKV("event_time", 1763900600.5)), "event_time"},
		{"event time milliseconds", event("whatsapp", "x", setKV("event_time", now.UnixMilli())), "future"},
		{"older than 7 days", event("whatsapp", "x", setKV("event_time", now.Add(-7*24*time.Hour-time.Second).Unix())), "7 days"},
		{"in the future", event("whatsapp", "x", setKV("event_time", now.Add(61*time.Second).Unix())), "future"},
		{"website source", event("whatsapp", "x", setKV("action_source", "website")), "action_source"},
		{"no source", event("whatsapp", "x", del("action_source")), "action_source"},
		{"telegram", event("whatsapp", "x", setKV("messaging_channel", "telegram")), "messaging_channel"},
		{"no channel", event("whatsapp", "x", del("messaging_channel")), "messaging_channel"},
		{"no user data", event("whatsapp", "x", del("user_data")), "user_data"},
		{"whatsapp no clid", event("whatsapp", "x", del("user_data.ctwa_clid")), "user_data.ctwa_clid"},
		{"whatsapp no waba", event("whatsapp", "x", del("user_data.whatsapp_business_account_id")), "whatsapp_business_account_id"},
		{"whatsapp empty clid", event("whatsapp", "x", func(e map[string]any) { e["user_data"].(map[string]any)["ctwa_clid"] = "" }), "ctwa_clid"},
		{"messenger no psid", event("messenger", "x", del("user_data.page_scoped_user_id")), "page_scoped_user_id"},
		{"messenger no page", event("messenger", "x", del("user_data.page_id")), "page_id"},
		{"instagram no igsid", event("instagram", "x", del("user_data.ig_sid")), "ig_sid"},
		{"instagram no account", event("instagram", "x", del("user_data.instagram_business_account_id")), "instagram_business_account_id"},
		{"messenger ids on whatsapp", event("whatsapp", "x", setKV("user_data", map[string]any{"page_id": "1", "page_scoped_user_id": "2"})), "whatsapp_business_account_id"},
		{"purchase no custom data", event("whatsapp", "x", del("custom_data")), "currency"},
		{"purchase no currency", event("whatsapp", "x", del("custom_data.currency")), "currency"},
		{"purchase bad currency", event("whatsapp", "x", setKV("custom_data", map[string]any{"currency": "dollars", "value": 1})), "currency"},
		{"purchase value string", event("whatsapp", "x", setKV("custom_data", map[string]any{"currency": "USD", "value": "twelve"})), "value"},
		{"purchase no value", event("whatsapp", "x", del("custom_data.value")), "value"},
		{"custom data array", event("whatsapp", "x", setKV("custom_data", []int{1})), "custom_data"},
		{"event id number", event("whatsapp", "x", setKV("event_id", 7)), "event_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Options{})
			a := postEvents(t, s, DefaultToken, event("messenger", "ok"), tt.ev)
			wantGraphError(t, a, http.StatusBadRequest, 100)
			if !strings.Contains(a.Error.Message, "event 1") || !strings.Contains(a.Error.Message, tt.want) {
				t.Errorf("message = %q; want it to name event 1 and %q", a.Error.Message, tt.want)
			}
			if strings.Contains(string(a.Body), "ARAk-test") {
				t.Errorf("error %s quotes a click id", a.Body)
			}
			if n := len(s.Events()); n != 0 {
				t.Errorf("recorded %d events; Meta rejects the entire batch", n)
			}
			if s.Rejected() != 1 {
				t.Errorf("Rejected() = %d; want 1", s.Rejected())
			}
		})
	}
}

func TestAcceptsEdgesMetaAccepts(t *testing.T) {
	tests := []struct {
		name string
		ev   map[string]any
	}{
		{"exactly 7 days old", event("whatsapp", "x", func(e map[string]any) { e["event_time"] = now.Add(-7 * 24 * time.Hour).Unix() })},
		{"a minute of skew", event("whatsapp", "x", func(e map[string]any) { e["event_time"] = now.Add(time.Minute).Unix() })},
		{"numeric page id", event("messenger", "x", func(e map[string]any) { e["user_data"].(map[string]any)["page_id"] = 109876543210987 })},
		{"lower-case currency", event("whatsapp", "x", func(e map[string]any) { e["custom_data"] = map[string]any{"currency": "usd", "value": 0} })},
		{"faq name OrderDelivered", event("instagram", "x", func(e map[string]any) { e["event_name"] = "OrderDelivered" })},
		{"no event id", event("whatsapp", "", func(e map[string]any) { delete(e, "event_id") })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Options{})
			if a := postEvents(t, s, DefaultToken, tt.ev); a.Status != http.StatusOK {
				t.Errorf("answer = %d %s; want 200", a.Status, a.Body)
			}
		})
	}
}

func TestBatchSize(t *testing.T) {
	s := newTestServer(t, Options{})
	wantGraphError(t, postEvents(t, s, DefaultToken, many(1001)...), http.StatusBadRequest, 100)
	wantGraphError(t, postEvents(t, s, DefaultToken), http.StatusBadRequest, 100)
	if a := postEvents(t, s, DefaultToken, many(1000)...); a.Status != http.StatusOK || a.OK.EventsReceived != 1000 {
		t.Errorf("1000 events: answer = %d; want 200 with 1000 received", a.Status)
	}
	q := url.Values{"access_token": {DefaultToken}}
	wantGraphError(t, do(t, http.MethodPost, s.URL()+"/"+NewestVersion+"/1/events", q, "application/json", []byte(`{"partner_agent":"x"}`)), http.StatusBadRequest, 100)
	wantGraphError(t, do(t, http.MethodPost, s.URL()+"/"+NewestVersion+"/1/events", q, "application/json", []byte(`not json`)), http.StatusBadRequest, 100)
	wantGraphError(t, do(t, http.MethodPost, s.URL()+"/"+NewestVersion+"/1/events", q, "application/json", []byte(`{"data":{}}`)), http.StatusBadRequest, 100)
	if got := s.Requests(); got != 6 || s.Rejected() != 5 || len(s.Events()) != 1000 {
		t.Errorf("Requests, Rejected, events = %d, %d, %d; want 6, 5, 1000", got, s.Rejected(), len(s.Events()))
	}
}

func TestFormBodyAndPartnerFields(t *testing.T) {
	s := newTestServer(t, Options{})
	form := url.Values{"access_token": {DefaultToken}, "data": {`[{"event_name":"LeadSubmitted","event_time":1763900600,
		"event_id":"f1","action_source":"business_messaging","messaging_channel":"messenger",
		"user_data":{"page_id":"1","page_scoped_user_id":"2"}}]`}, "partner_agent": {"ctmpipe"}, "test_event_code": {"TEST1"}}
	a := do(t, http.MethodPost, s.URL()+"/"+NewestVersion+"/77/events", nil, "application/x-www-form-urlencoded", []byte(form.Encode()))
	if a.Status != http.StatusOK {
		t.Fatalf("form post: %d %s", a.Status, a.Body)
	}
	e := s.Events()[0]
	if e.DatasetID != "77" || e.PartnerAgent != "ctmpipe" || e.TestEventCode != "TEST1" || e.EventID != "f1" {
		t.Errorf("recorded %+v", e)
	}
}

func TestConcurrentPosts(t *testing.T) {
	s := newTestServer(t, Options{})
	var wg sync.WaitGroup
	for i := range 20 {
		body, _ := json.Marshal(map[string]any{"data": []any{event("whatsapp", fmt.Sprintf("c%d", i))}})
		wg.Go(func() {
			resp, err := http.Post(s.URL()+"/"+NewestVersion+"/1/events?access_token="+DefaultToken, "application/json", bytes.NewReader(body))
			if err != nil {
				t.Errorf("post %d: %v", i, err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("post %d: status %d", i, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if s.Requests() != 20 || len(s.CountByEventID()) != 20 {
		t.Errorf("Requests() = %d, distinct ids = %d; want 20, 20", s.Requests(), len(s.CountByEventID()))
	}
	s.Reset()
	if s.Requests() != 0 || len(s.Events()) != 0 {
		t.Error("Reset() left state behind")
	}
}
