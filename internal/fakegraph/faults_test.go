package fakegraph

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestFailNext(t *testing.T) {
	s := newTestServer(t, Options{})
	s.SetRegainAccess(3)
	s.FailNext(1, 500, 2)
	s.FailNext(1, 400, 80004)
	s.FailNext(1, 400, 4)
	s.FailNext(1, 400, 190)
	s.FailNext(1, 502, 0)
	ev := event("whatsapp", "f1")

	a := postEvents(t, s, DefaultToken, ev)
	wantGraphError(t, a, 500, 2)
	if !a.Error.IsTransient {
		t.Errorf("code 2: is_transient = false; want true")
	}

	a = postEvents(t, s, DefaultToken, ev)
	wantGraphError(t, a, 400, 80004)
	var buc map[string][]struct {
		CallCount int `json:"call_count"`
		Regain    int `json:"estimated_time_to_regain_access"`
	}
	if err := json.Unmarshal([]byte(a.Header.Get("X-Business-Use-Case-Usage")), &buc); err != nil ||
		len(buc["1"]) != 1 || buc["1"][0].CallCount != 100 || buc["1"][0].Regain != 3 {
		t.Errorf("X-Business-Use-Case-Usage = %q; want call_count 100, regain 3 for dataset 1", a.Header.Get("X-Business-Use-Case-Usage"))
	}

	a = postEvents(t, s, DefaultToken, ev)
	wantGraphError(t, a, 400, 4)
	if !strings.Contains(a.Header.Get("X-App-Usage"), `"call_count":100`) {
		t.Errorf("X-App-Usage = %q; want call_count 100", a.Header.Get("X-App-Usage"))
	}

	wantGraphError(t, postEvents(t, s, DefaultToken, ev), 400, 190)

	a = postEvents(t, s, DefaultToken, ev)
	if a.Status != 502 || !strings.Contains(string(a.Body), "<html>") {
		t.Errorf("code 0: answer = %d %s; want a non-JSON 502 page", a.Status, a.Body)
	}

	if a = postEvents(t, s, DefaultToken, ev); a.Status != http.StatusOK {
		t.Errorf("after the injected failures: %d; want 200", a.Status)
	}
	if s.Requests() != 6 || s.Rejected() != 5 || s.CountByEventID()["f1"] != 1 {
		t.Errorf("Requests, Rejected, f1 = %d, %d, %d; want 6, 5, 1", s.Requests(), s.Rejected(), s.CountByEventID()["f1"])
	}
}

func TestFailNextPrecedesAuth(t *testing.T) {
	s := newTestServer(t, Options{})
	s.FailNext(1, 503, 1)
	wantGraphError(t, postEvents(t, s, "", event("messenger", "x")), 503, 1)
	s.FailNext(2, 500, 2)
	s.ClearFaults()
	if a := postEvents(t, s, DefaultToken, event("messenger", "x")); a.Status != http.StatusOK {
		t.Errorf("after ClearFaults: %d", a.Status)
	}
}

func TestRejectEventID(t *testing.T) {
	s := newTestServer(t, Options{})
	s.RejectEventID("bad")
	a := postEvents(t, s, DefaultToken, event("whatsapp", "g1"), event("whatsapp", "g2"), event("whatsapp", "bad"))
	wantGraphError(t, a, http.StatusBadRequest, 100)
	if !strings.Contains(a.Error.Message, "event 2") {
		t.Errorf("message = %q; want it to name event 2", a.Error.Message)
	}
	if len(s.Events()) != 0 {
		t.Errorf("recorded %d events of a rejected batch", len(s.Events()))
	}
	s.AllowEventID("bad")
	if a := postEvents(t, s, DefaultToken, event("whatsapp", "bad")); a.Status != http.StatusOK {
		t.Errorf("after AllowEventID: %d", a.Status)
	}
}

func TestOnAcceptRunsBeforeTheResponse(t *testing.T) {
	s := newTestServer(t, Options{})
	var hookDone atomic.Bool
	s.OnAccept(func(evs []Event) {
		if len(evs) != 1 || evs[0].EventID != "h1" {
			t.Errorf("OnAccept(%+v); want event h1", evs)
		}
		if s.CountByEventID()["h1"] != 1 {
			t.Error("OnAccept ran before the events were recorded")
		}
		hookDone.Store(true)
	})
	if a := postEvents(t, s, DefaultToken, event("messenger", "h1")); a.Status != http.StatusOK {
		t.Fatalf("answer = %d", a.Status)
	}
	if !hookDone.Load() {
		t.Error("the response arrived before OnAccept finished")
	}
	s.OnAccept(nil)
	postEvents(t, s, DefaultToken, event("messenger", "h2"))
}

func TestDropNextLosesTheResponseNotTheEvents(t *testing.T) {
	s := newTestServer(t, Options{})
	s.DropNext(1)
	body := strings.NewReader(`{"data":[{"event_name":"LeadSubmitted","event_time":1763900600,"event_id":"d1",
		"action_source":"business_messaging","messaging_channel":"messenger","user_data":{"page_id":"1","page_scoped_user_id":"2"}}]}`)
	resp, err := http.Post(s.URL()+"/"+NewestVersion+"/1/events?access_token="+DefaultToken, "application/json", body)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("DropNext: got status %d; want a broken connection", resp.StatusCode)
	}
	if s.CountByEventID()["d1"] != 1 || s.Rejected() != 0 {
		t.Errorf("d1 count = %d, Rejected = %d; want 1, 0 (Meta accepted it)", s.CountByEventID()["d1"], s.Rejected())
	}
	if a := postEvents(t, s, DefaultToken, event("messenger", "d2")); a.Status != http.StatusOK {
		t.Errorf("after the drop: %d", a.Status)
	}
}

func TestLatencyClientGivesUp(t *testing.T) {
	s := newTestServer(t, Options{})
	s.Latency(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/"+NewestVersion+"/1/events?"+url.Values{"access_token": {DefaultToken}}.Encode(),
		strings.NewReader(`{"data":[]}`))
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do() error = %v; want deadline exceeded", err)
	}
	s.Latency(0)
	if a := postEvents(t, s, DefaultToken, event("instagram", "l1")); a.Status != http.StatusOK {
		t.Errorf("after Latency(0): %d", a.Status)
	}
	if len(s.Events()) != 1 {
		t.Errorf("recorded %d events; want 1", len(s.Events()))
	}
}

func TestSetUsage(t *testing.T) {
	s := newTestServer(t, Options{})
	s.SetUsage(85)
	a := postEvents(t, s, DefaultToken, event("whatsapp", "u1"))
	if a.Status != http.StatusOK || !strings.Contains(a.Header.Get("X-Business-Use-Case-Usage"), `"call_count":85`) {
		t.Errorf("answer = %d, usage header %q; want 200 with call_count 85", a.Status, a.Header.Get("X-Business-Use-Case-Usage"))
	}
}
