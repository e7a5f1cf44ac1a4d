package fakegraph_test

// These tests drive the fake with the real pkg/capi client: the two were
// written separately, so agreement here is evidence that both read Meta's
// rules the same way.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
)

var now = time.Unix(1763900600, 0)

func setup(t *testing.T, opts fakegraph.Options, secret string) (*fakegraph.Server, *capi.Client) {
	t.Helper()
	opts.Now = func() time.Time { return now }
	s := fakegraph.New(t, opts)
	return s, capi.NewClient(capi.Config{BaseURL: s.URL(), Version: fakegraph.NewestVersion, AppSecret: secret, PartnerAgent: "ctmpipe"})
}

func whatsapp(id string) capi.Event {
	return capi.Event{EventName: "Purchase", EventTime: now.Unix(), EventID: id, ActionSource: capi.ActionSource,
		MessagingChannel: capi.ChannelWhatsApp,
		UserData:         capi.UserData{WhatsAppBusinessAccountID: "102290129340398", CtwaClid: "ARAk-test"},
		CustomData:       json.RawMessage(`{"currency":"USD","value":123.45}`)}
}

func TestValidateAgreesWithFake(t *testing.T) {
	s, c := setup(t, fakegraph.Options{}, "")
	mut := func(f func(*capi.Event)) capi.Event { e := whatsapp("a"); f(&e); return e }
	one, ca, seven := 1, 1000, 7
	cases := map[string]capi.Event{
		"valid": whatsapp("a"),
		"messenger": mut(func(e *capi.Event) {
			e.MessagingChannel, e.UserData = "messenger", capi.UserData{PageID: "1", PageScopedUserID: "2"}
		}),
		"instagram": mut(func(e *capi.Event) {
			e.MessagingChannel, e.UserData = "instagram", capi.UserData{InstagramBusinessAccountID: "1", IGSID: "2"}
		}),
		"lead no data":   mut(func(e *capi.Event) { e.EventName, e.CustomData = "LeadSubmitted", nil }),
		"name Lead":      mut(func(e *capi.Event) { e.EventName = "Lead" }),
		"7 days":         mut(func(e *capi.Event) { e.EventTime = now.Add(-capi.MaxEventAge).Unix() }),
		"7 days + 1s":    mut(func(e *capi.Event) { e.EventTime = now.Add(-capi.MaxEventAge - time.Second).Unix() }),
		"skew":           mut(func(e *capi.Event) { e.EventTime = now.Add(capi.MaxFutureSkew).Unix() }),
		"future":         mut(func(e *capi.Event) { e.EventTime = now.Add(capi.MaxFutureSkew + time.Second).Unix() }),
		"website":        mut(func(e *capi.Event) { e.ActionSource = "website" }),
		"telegram":       mut(func(e *capi.Event) { e.MessagingChannel = "telegram" }),
		"no clid":        mut(func(e *capi.Event) { e.UserData.CtwaClid = "" }),
		"wrong ids":      mut(func(e *capi.Event) { e.MessagingChannel = "instagram" }),
		"value string":   mut(func(e *capi.Event) { e.CustomData = json.RawMessage(`{"currency":"USD","value":"12"}`) }),
		"no currency":    mut(func(e *capi.Event) { e.CustomData = json.RawMessage(`{"value":12}`) }),
		"no custom data": mut(func(e *capi.Event) { e.CustomData = nil }),
		"ldu":            mut(func(e *capi.Event) { e.DataProcessingOptions = []string{"LDU"} }),
		"ldu california": mut(func(e *capi.Event) {
			e.DataProcessingOptions, e.DataProcessingOptionsCountry, e.DataProcessingOptionsState = []string{"LDU"}, &one, &ca
		}),
		"ldu lower case": mut(func(e *capi.Event) { e.DataProcessingOptions = []string{"ldu"} }),
		"ldu state 7":    mut(func(e *capi.Event) { e.DataProcessingOptions, e.DataProcessingOptionsState = []string{"LDU"}, &seven }),
	}
	for name, ev := range cases {
		t.Run(name, func(t *testing.T) {
			verr := ev.ValidateAt(now)
			_, serr := c.Send(t.Context(), "1", fakegraph.DefaultToken, []capi.Event{ev})
			if (verr == nil) != (serr == nil) {
				t.Fatalf("Validate() = %v but fake answered %v", verr, serr)
			}
			var ae *capi.APIError
			if serr != nil && (!errors.As(serr, &ae) || ae.Class() != capi.Rejected || ae.Code != 100) {
				t.Errorf("fake rejection = %v; want a Rejected code 100 APIError", serr)
			}
		})
	}
	if s.Requests() != len(cases) {
		t.Errorf("fake saw %d requests; want %d", s.Requests(), len(cases))
	}
}

func TestClientAgainstFake(t *testing.T) {
	s, c := setup(t, fakegraph.Options{Tokens: []string{"tok"}, AppSecret: "shh"}, "shh")
	send := func(id string) error {
		_, err := c.Send(t.Context(), "1", "tok", []capi.Event{whatsapp(id)})
		return err
	}
	class := func(err error) capi.Class {
		var ae *capi.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("error %v is not an *APIError", err)
		}
		return ae.Class()
	}

	resp, err := c.Send(t.Context(), "1", "tok", []capi.Event{whatsapp("ok1"), whatsapp("ok2")})
	if err != nil || resp.EventsReceived != 2 {
		t.Fatalf("Send() = %+v, %v; want 2 received", resp, err)
	}
	if e := s.Events()[0]; e.PartnerAgent != "ctmpipe" || e.Token != "tok" {
		t.Errorf("recorded %+v; want partner_agent and token", e)
	}

	s.SetRegainAccess(2)
	s.FailNext(1, 400, 80004)
	err = send("t1")
	var ae *capi.APIError
	if class(err) != capi.Throttled || !errors.As(err, &ae) || ae.Usage.RetryAfter != 2*time.Minute || ae.Usage.MaxPercent != 100 {
		t.Errorf("throttled: %v usage %+v; want Throttled, 2m, 100%%", err, ae.Usage)
	}
	s.FailNext(1, 500, 2)
	if got := class(send("r1")); got != capi.Retryable {
		t.Errorf("500/2 class = %v; want retryable", got)
	}
	s.FailNext(1, 502, 0)
	if got := class(send("r2")); got != capi.Retryable {
		t.Errorf("502 page class = %v; want retryable", got)
	}
	s.RejectEventID("bad")
	_, err = c.Send(t.Context(), "1", "tok", []capi.Event{whatsapp("g"), whatsapp("bad")})
	if class(err) != capi.Rejected || !errors.As(err, &ae) || !strings.Contains(ae.Detail(), "event 1") {
		t.Errorf("rejected batch: %v; want Rejected with Detail naming event 1", err)
	}
	s.RevokeToken("tok")
	if got := class(send("x")); got != capi.SetupFault {
		t.Errorf("revoked token class = %v; want setup_fault", got)
	}
	s.SetTokens("tok")
	wrong := capi.NewClient(capi.Config{BaseURL: s.URL(), AppSecret: "not-shh"})
	if _, err := wrong.Send(t.Context(), "1", "tok", []capi.Event{whatsapp("p")}); class(err) != capi.SetupFault {
		t.Errorf("wrong app secret class = %v; want setup_fault", class(err))
	}
	if got := s.CountByEventID(); len(got) != 2 || got["ok1"] != 1 {
		t.Errorf("accepted = %v; want only ok1 and ok2", got)
	}
}

func TestInDoubtAgainstFake(t *testing.T) {
	s, c := setup(t, fakegraph.Options{}, "")
	s.DropNext(1)
	_, err := c.Send(t.Context(), "1", fakegraph.DefaultToken, []capi.Event{whatsapp("d1")})
	if !capi.IsInDoubt(err) || s.CountByEventID()["d1"] != 1 {
		t.Errorf("dropped response: IsInDoubt(%v) = %v, accepted %d; want true, 1", err, capi.IsInDoubt(err), s.CountByEventID()["d1"])
	}
	s.Latency(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = c.Send(ctx, "1", fakegraph.DefaultToken, []capi.Event{whatsapp("d2")})
	if !capi.IsInDoubt(err) {
		t.Errorf("timeout while Meta thinks: IsInDoubt(%v) = false; want true", err)
	}
}

// The client resolves a dataset with the POST alone, which Meta answers with
// the existing dataset, so a WABA (whose GET Meta refuses) resolves too.
func TestDatasetAgainstFake(t *testing.T) {
	s, c := setup(t, fakegraph.Options{StrictDatasets: true, RefuseDatasetRead: true}, "")
	id, err := c.Dataset(t.Context(), "109876543210987", fakegraph.DefaultToken)
	if err != nil || id == "" {
		t.Fatalf("Dataset() = %q, %v", id, err)
	}
	again, err := c.Dataset(t.Context(), "109876543210987", fakegraph.DefaultToken)
	if err != nil || again != id {
		t.Errorf("second Dataset() = %q, %v; want %s", again, err, id)
	}
	calls := s.DatasetCalls()
	methods := make([]string, len(calls))
	for i, call := range calls {
		methods[i] = call.Method
	}
	if strings.Join(methods, ",") != "POST,POST" {
		t.Errorf("Dataset API calls = %v; want POST twice", methods)
	}
	ev := whatsapp("ds")
	if _, err := c.Send(t.Context(), id, fakegraph.DefaultToken, []capi.Event{ev}); err != nil {
		t.Errorf("Send to created dataset: %v", err)
	}
	_, err = c.Dataset(t.Context(), "1", "forged")
	var ae *capi.APIError
	if !errors.As(err, &ae) || ae.Class() != capi.SetupFault || ae.Status != http.StatusBadRequest {
		t.Errorf("Dataset(forged token) error = %v; want SetupFault APIError", err)
	}
}
