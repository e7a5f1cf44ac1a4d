package test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
)

// The account checker itself: each kind of wrong fate is reported, and only
// those. (No binaries: this runs under -short too.)
func TestFaultAccountReports(t *testing.T) {
	r := &faultRig{t: t, graph: fakegraph.New(t, fakegraph.Options{}), wants: newFaultIndex()}
	for _, w := range []faultWant{
		{EventID: "ok"}, {EventID: "lost"}, {EventID: "dup"}, {EventID: "both"}, {EventID: "doubt"}, {EventID: "doubt-unsent"},
		{EventID: "rej", Reason: "rejected"}, {EventID: "wrong", Reason: "rejected"}, {EventID: "sent-not-dead", Reason: "invalid"},
		{MsgIDs: []string{"m-bad"}, Reason: "invalid"}, {EventID: "rej2", Reason: "rejected"},
		{EventID: "rej-doubt", Reason: "rejected"},
	} {
		if len(w.MsgIDs) == 0 {
			w.MsgIDs = []string{w.EventID}
		}
		r.expect(w)
	}
	r.expect(faultWant{EventID: "dup", MsgIDs: []string{"dup#2"}}) // a second copy of the same event
	faultPostEvents(t, r.graph, "ok", "dup", "dup", "both", "doubt", "sent-not-dead", "stranger")
	dead := []faultDead{
		{Reason: "rejected", EventID: "rej"}, {Reason: "invalid", EventID: "wrong"}, {Reason: "expired", EventID: "both"},
		{Reason: "in_doubt", EventID: "doubt"}, {Reason: "in_doubt", MsgID: "doubt-unsent"},
		{Reason: "invalid", MsgID: "m-bad"}, {Reason: "invalid", MsgID: "nobody"},
		{Reason: "rejected", EventID: "rej2", MsgID: "rej2"}, {Reason: "rejected", EventID: "rej2", MsgID: "rej2"},
		{Reason: "in_doubt", EventID: "rej-doubt"},
	}
	wants := r.since(0)
	if len(wants) != 12 {
		t.Fatalf("%d conversions registered; want 12 (copies of one event_id are one conversion)", len(wants))
	}
	for _, inDoubtOK := range []bool{false, true} {
		problems, tally := r.check(wants, dead, inDoubtOK)
		got := map[string]string{}
		for _, p := range problems {
			f := strings.Split(p, "\t")
			got[f[0]] = f[len(f)-1]
		}
		want := map[string]string{
			"lost": "lost", "dup": "duplicated", "both": "sent and dead-lettered", "wrong": "wrong reason",
			"sent-not-dead": "sent, want a dead letter", "stranger": "unexpected at Graph", "msg:nobody": "unexpected dead letter",
			"rej2": "dead-lettered twice",
		}
		wantTally := faultTally{Sent: 1, Dead: map[string]int{"rejected": 1, "invalid": 1}}
		if inDoubtOK {
			wantTally.InDoubt, wantTally.InDoubtAt = 3, 1
		} else {
			want["doubt"], want["doubt-unsent"] = "sent and dead-lettered", "wrong reason"
			want["rej-doubt"] = "wrong reason"
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("inDoubtOK=%v: problems (-want +got):\n%s", inDoubtOK, diff)
		}
		if diff := cmp.Diff(wantTally, tally); diff != "" {
			t.Errorf("inDoubtOK=%v: tally (-want +got):\n%s", inDoubtOK, diff)
		}
	}
}

// faultPostEvents makes the fake accept one valid event per id.
func faultPostEvents(t *testing.T, g *fakegraph.Server, ids ...string) {
	t.Helper()
	for _, id := range ids {
		data := fmt.Sprintf(`[{"event_id":%q,"event_name":"LeadSubmitted","event_time":%d,"action_source":"business_messaging",`+
			`"messaging_channel":"messenger","user_data":{"page_id":"1","page_scoped_user_id":"2"}}]`, id, time.Now().Unix())
		form := url.Values{"access_token": {fakegraph.DefaultToken}, "data": {data}}
		resp, err := http.PostForm(g.URL()+"/"+fakegraph.NewestVersion+"/1/events", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("fake Graph answered %d for %s", resp.StatusCode, id)
		}
	}
}
