package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/sender"
)

// sender dlq list prints a table by filter; sender dlq show prints one
// letter with its message, the user id masked unless -reveal.
func TestDLQCommands(t *testing.T) {
	srv := natstest.RunJetStream(t)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: sender.StreamDLQ, Subjects: []string{sender.SubjectDLQ}}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ reason, business, id, text string }{
		{"rejected", "1001", "ord-1", "Meta 100: Invalid parameter"},
		{"unattributed", "1001", "ord-2", "no ad-click context for the conversation within CONTEXT_WAIT"},
		{"rejected", "2002", "ord-3", "Meta 100: Invalid parameter"},
	} {
		m := nats.NewMsg("dlq." + l.reason)
		m.Data = []byte(`{"event_id":"` + l.id + `","event_name":"Purchase","channel":"whatsapp","business_id":"` + l.business + `","user_id":"5511999998888"}`)
		m.Header.Set(sender.HeaderReason, l.reason)
		m.Header.Set(sender.HeaderError, l.text)
		m.Header.Set(sender.HeaderEventID, l.id)
		m.Header.Set(sender.HeaderSubject, "conversions.whatsapp")
		if _, err := js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	e := env(map[string]string{"NATS_URL": srv.ClientURL()})
	var out bytes.Buffer
	if err := run(context.Background(), []string{"dlq", "list", "-reason", "rejected"}, e, &out, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(lines[0], "EVENT_ID") ||
		!strings.Contains(lines[1], "ord-3") || !strings.Contains(lines[1], "2002") || !strings.Contains(lines[2], "Meta 100") {
		t.Errorf("dlq list -reason rejected printed:\n%s\nwant a header, ord-3 then ord-1", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"dlq", "list", "-business", "1001", "-since", "1h", "-limit", "1"}, e, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ord-2") || strings.Contains(out.String(), "ord-1") || !strings.Contains(out.String(), "more") {
		t.Errorf("dlq list -business 1001 -limit 1 printed:\n%s\nwant ord-2 only, and a note that there is more", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"dlq", "show", "1"}, e, &out, &out); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "ord-1") || !strings.Contains(s, `"user_id":"…8888"`) || strings.Contains(s, "5511999998888") ||
		!strings.Contains(s, "Invalid parameter") {
		t.Errorf("dlq show 1 printed:\n%s\nwant the letter with user_id masked", s)
	}
	out.Reset()
	if err := run(context.Background(), []string{"dlq", "show", "1", "-reveal"}, e, &out, &out); err != nil || !strings.Contains(out.String(), "5511999998888") {
		t.Errorf("dlq show 1 -reveal = %v:\n%s\nwant the user_id", err, out.String())
	}
	if err := run(context.Background(), []string{"dlq", "show", "99"}, e, &out, &out); err == nil || !strings.Contains(err.Error(), "no dead letter") {
		t.Errorf("dlq show 99 = %v; want no dead letter", err)
	}
	for _, args := range [][]string{{"dlq", "list", "-reason", "bogus"}, {"dlq", "show"}, {"dlq", "frob"}} {
		if err := run(context.Background(), args, e, &out, &out); err == nil {
			t.Errorf("run(%q) = nil; want an error", args)
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"dlq", "-h"}, e, &out, &out); err != nil || !strings.Contains(out.String(), "Usage: sender dlq") {
		t.Errorf("dlq -h = %v, %q; want the usage on stdout", err, out.String())
	}
	// redrive by business and sequence: a dry run counts ord-3 only.
	out.Reset()
	if err := run(context.Background(), []string{"redrive", "-business", "2002", "-seq", "3", "-dry-run"}, e, &out, &out); err != nil ||
		!strings.Contains(out.String(), "would redrive (dry run): 1 dead letters, rejected 1") || !strings.Contains(out.String(), "ord-3") {
		t.Errorf("redrive -business 2002 -seq 3 -dry-run = %v, %q", err, out.String())
	}
}
