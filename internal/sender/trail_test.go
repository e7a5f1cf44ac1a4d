package sender_test

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
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/ledger"
)

const adminToken = "test-admin-token"

// adminAPI serves the ops API over e's Redis and NATS as the admin
// listener does.
func (e *env) adminAPI() *httptest.Server {
	e.t.Helper()
	adm := admin.New(admin.Config{Token: adminToken}, zap.NewNop(), prometheus.NewRegistry())
	opsapi.Register(adm.API(), opsapi.Deps{Redis: e.rdb, JS: e.js})
	srv := httptest.NewServer(adm.Handler())
	e.t.Cleanup(srv.Close)
	return srv
}

// get fetches path with the admin token and returns the status and body.
func get(t testing.TB, srv *httptest.Server, path, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// waitTrail polls GET /v1/events/{business}/{event} until its state is
// want, and returns the record.
func (e *env) waitTrail(srv *httptest.Server, business, event, want string) trail.Record {
	e.t.Helper()
	var r trail.Record
	var last string
	e.waitFor(40*time.Second, event+" trail "+want, func() bool {
		code, body := get(e.t, srv, "/v1/events/"+business+"/"+event, adminToken)
		last = string(body)
		if code != http.StatusOK {
			return false
		}
		r = trail.Record{}
		if err := json.Unmarshal(body, &r); err != nil {
			e.t.Fatal(err)
		}
		return r.State == want
	})
	if strings.Contains(last, "psid-") || strings.Contains(last, "wa-") || strings.Contains(last, "clid-") {
		e.t.Errorf("trail holds a personal id: %s", last)
	}
	return r
}

// Every state of the trail, read through the admin API, with 404 and 401.
func TestTrailStates(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) {
		c.RetryMin, c.RetryMax = 3*time.Second, 3*time.Second
		c.Datasets = map[string]sender.DatasetConfig{"pz": {DatasetID: "ds-z", Token: "token-z", TokenEnv: "TOKEN_Z"}}
		c.PauseInterval = time.Hour
	})
	e.fake.SetTokens() // only the default token works: pz's token-z is revoked
	srv := e.adminAPI()

	if code, _ := get(t, srv, "/v1/events/p1/nothing", ""); code != http.StatusUnauthorized {
		t.Errorf("without token: %d; want 401", code)
	}
	if code, body := get(t, srv, "/v1/events/p1/nothing", adminToken); code != http.StatusNotFound || !strings.Contains(string(body), "no trail for this event") {
		t.Errorf("unknown event: %d %s; want 404 with the reason", code, body)
	}

	// waiting_context, then sent once the click arrives.
	e.publish("messenger", conv("tw-1", "messenger", "p1", "psid-1"), "tw-1")
	r := e.waitTrail(srv, "p1", "tw-1", trail.WaitingContext)
	if r.RetryAt == nil || !strings.Contains(r.Reason, "referral") || r.EventName != "Purchase" || r.Channel != "messenger" {
		t.Errorf("waiting_context trail = %+v; want retry_at, a reason, event name and channel", r)
	}
	e.touch(attribution.Messenger, "p1", "psid-1")
	r = e.waitTrail(srv, "p1", "tw-1", trail.Sent)
	if r.Sent == nil || r.Sent.DatasetID == "" || r.Sent.FBTraceID == "" || r.Sent.EventsReceived != 1 || r.Attempts < 2 {
		t.Errorf("sent trail = %+v (sent %+v); want dataset, fbtrace_id, events_received 1 and 2+ attempts", r, r.Sent)
	}

	// retrying after a transient Graph error, then sent.
	e.fake.FailNext(1, 500, 2)
	e.publish("messenger", conv("tw-2", "messenger", "p1", "psid-1"), "tw-2")
	r = e.waitTrail(srv, "p1", "tw-2", trail.Retrying)
	if r.RetryAt == nil || !strings.Contains(r.Reason, "send failed") {
		t.Errorf("retrying trail = %+v; want retry_at and the failure", r)
	}
	e.waitTrail(srv, "p1", "tw-2", trail.Sent)

	// duplicate: the ledger knows it as sent already.
	if err := ledger.New(e.rdb, 0).MarkSent(t.Context(), []string{ledger.ID("p1", "tw-3")}); err != nil {
		t.Fatal(err)
	}
	e.publish("messenger", conv("tw-3", "messenger", "p1", "psid-1"), "tw-3")
	e.waitTrail(srv, "p1", "tw-3", trail.Duplicate)
	// A duplicate of a sent event keeps the sent trail.
	e.publish("messenger", conv("tw-1", "messenger", "p1", "psid-1"), "tw-1-again")
	e.settled(20 * time.Second)
	if r := e.waitTrail(srv, "p1", "tw-1", trail.Sent); r.Sent == nil {
		t.Errorf("trail of a sent event after a duplicate = %+v; want still sent", r)
	}

	// dead_letter (rejected by Meta), with its DLQ sequence, logged once.
	e.fake.RejectEventID("tw-4")
	e.publish("messenger", conv("tw-4", "messenger", "p1", "psid-1"), "tw-4")
	r = e.waitTrail(srv, "p1", "tw-4", trail.DeadLetter)
	letters := e.dlq()
	if r.DeadLetter == nil || r.DeadLetter.Reason != sender.ReasonRejected || r.DeadLetter.Error == "" ||
		len(letters) != 1 || r.DeadLetter.Seq != letters[0].Seq {
		t.Errorf("dead letter trail = %+v (%+v); want rejected with the error and DLQ seq of %+v", r, r.DeadLetter, letters)
	}
	logged := e.logs.FilterMessage("dead letter").FilterField(zap.String("event_id", "tw-4"))
	if logged.Len() != 1 || logged.All()[0].Level != zap.WarnLevel {
		t.Errorf("dead letter logged %d times; want once at WARN", logged.Len())
	}
	for _, l := range e.logs.All() {
		for _, f := range l.Context {
			if strings.Contains(f.String, "psid-") {
				t.Errorf("log %q holds a personal id", l.Message)
			}
		}
	}

	// parked: the business's token is revoked.
	e.touch(attribution.Messenger, "pz", "psid-z")
	e.publish("messenger", conv("tw-5", "messenger", "pz", "psid-z"), "tw-5")
	if r := e.waitTrail(srv, "pz", "tw-5", trail.Parked); r.Reason == "" {
		t.Errorf("parked trail = %+v; want a reason", r)
	}

	// in_doubt: Meta's answer is lost.
	e.fake.DropNext(1)
	e.publish("messenger", conv("tw-6", "messenger", "p1", "psid-1"), "tw-6")
	r = e.waitTrail(srv, "p1", "tw-6", trail.InDoubt)
	if r.DeadLetter == nil || r.DeadLetter.Reason != sender.ReasonInDoubt {
		t.Errorf("in_doubt trail = %+v; want its dead letter", r)
	}
}
