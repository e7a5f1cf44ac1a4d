package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
)

func TestPublishLinesWithMsgIDAndReportsBadOnes(t *testing.T) {
	s := natstest.RunJetStream(t)
	js, err := jetstream.New(s.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CONVERSIONS", Subjects: []string{"conversions.>"}}); err != nil {
		t.Fatal(err)
	}
	a := `{"event_id":"a","event_name":"OrderDelivered","channel":"whatsapp","business_id":"1","user_id":"US.abc123"}`
	in := strings.Join([]string{
		a,
		`not json`,
		`{"event_id":"b","event_name":"QualifiedLead","channel":"messenger","business_id":"1","user_id":"2"}`,
		a,
		`{"channel":"instagram"}`,
		`{"event_id":"c","event_name":"Purchase","channel":"messenger","business_id":"1","user_id":"2","custom_data":{"currency":"USD","value":NaN}}`,
		`{"event_id":"d","event_name":"Refund","channel":"messenger","business_id":"1","user_id":"2"}`,
	}, "\n")
	var out bytes.Buffer
	err = run(ctx, []string{"-nats", s.ClientURL(), "-"}, func(string) string { return "" }, strings.NewReader(in), &out, &out)
	if err == nil {
		t.Fatalf("run = nil; want an error for the four bad lines\n%s", out.String())
	}
	for _, want := range []string{
		"-:2: not a valid conversion: not JSON",
		"-:5: not a valid conversion: event_id: missing",
		"-:6: not a valid conversion: not JSON: syntax error at byte",
		"-:7: not a valid conversion: event_name: not one of Purchase, LeadSubmitted",
		"-:4: a → CONVERSIONS seq 1 (duplicate",
		"published 2, duplicates 1 (already stored, not stored again), failed 4",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	st, err := js.Stream(ctx, "CONVERSIONS")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 2 {
		t.Errorf("stream holds %d messages; want 2 (a once, b)", n)
	}
	m, err := st.GetLastMsgForSubject(ctx, "conversions.messenger")
	if err != nil || m.Header.Get("Nats-Msg-Id") != "b" {
		t.Errorf("last conversions.messenger = %v, %v; want Nats-Msg-Id b", m, err)
	}
}

// -check=false publishes what breaks the contract, so that the sender's dead
// letters can be seen; a line without event_id or channel still fails.
func TestPublishUnchecked(t *testing.T) {
	s := natstest.RunJetStream(t)
	js, err := jetstream.New(s.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CONVERSIONS", Subjects: []string{"conversions.>"}}); err != nil {
		t.Fatal(err)
	}
	in := `{"event_id":"d","event_name":"Refund","channel":"messenger","business_id":"1","user_id":"2"}` + "\n" + `{"channel":"instagram"}`
	var out bytes.Buffer
	err = run(ctx, []string{"-nats-url", s.ClientURL(), "-check=false", "-"}, func(string) string { return "" }, strings.NewReader(in), &out, &out)
	if err == nil || !strings.Contains(out.String(), "published 1, duplicates 0 (already stored, not stored again), failed 1") {
		t.Fatalf("run = %v; want 1 published, 1 failed\n%s", err, out.String())
	}
}

// Asked for with -h, the help goes to stdout.
func TestPublishHelpToStdout(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"-h"}, func(string) string { return "" }, strings.NewReader(""), &out, &errOut); err == nil {
		t.Fatal("run(-h) = nil; want flag.ErrHelp")
	}
	if !strings.Contains(out.String(), "Usage: publish") || errOut.Len() != 0 {
		t.Errorf("stdout %q, stderr %q; want the usage on stdout only", out.String(), errOut.String())
	}
}
