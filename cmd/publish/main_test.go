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
	in := strings.Join([]string{
		`{"event_id":"a","channel":"whatsapp"}`,
		`not json`,
		`{"event_id":"b","channel":"messenger"}`,
		`{"event_id":"a","channel":"whatsapp"}`,
		`{"channel":"instagram"}`,
	}, "\n")
	var out bytes.Buffer
	err = run(ctx, []string{"-nats", s.ClientURL(), "-"}, func(string) string { return "" }, strings.NewReader(in), &out, &out)
	if err == nil {
		t.Fatalf("run = nil; want an error for the two bad lines\n%s", out.String())
	}
	for _, want := range []string{"-:2: not a conversion", "-:5: not a conversion", "-:4: a → CONVERSIONS seq 1 (duplicate", "published 3, failed 2"} {
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
