package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/localcreds"
	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/sender"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// allInOneNATS is an in-process JetStream that, like the all-in-one's,
// refuses connections without the credentials it keeps in its DATA_DIR. It
// returns a JetStream context logged in, and the environment a tool on the
// same machine has: NATS_URL on 127.0.0.1 without a user, and DATA_DIR.
func allInOneNATS(t *testing.T) (jetstream.JetStream, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	creds, _, err := localcreds.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.RunWith(t, func(o *server.Options) { o.Username, o.Password = creds.NATSUser, creds.NATSPassword })
	if nc, err := nats.Connect(srv.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("the test NATS takes connections without credentials")
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(creds.NATSUser, creds.NATSPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js, map[string]string{"NATS_URL": srv.ClientURL(), "DATA_DIR": dir}
}

// deadLetters stores three dead letters in DLQ (sequences 1, 2, 3) and
// creates CONVERSIONS for redrives to publish to.
func deadLetters(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	for _, cfg := range []jetstream.StreamConfig{
		{Name: sender.StreamDLQ, Subjects: []string{sender.SubjectDLQ}},
		{Name: sender.StreamConversions, Subjects: []string{sender.SubjectConversions}},
	} {
		if _, err := js.CreateStream(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
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
}

// ctm runs the command line args and returns what it printed.
func ctm(t *testing.T, e map[string]string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(t.Context(), args, env(e), strings.NewReader(""), &out)
	return out.String(), err
}

// ctm dlq list|show|redrive against an all-in-one-like NATS found through
// DATA_DIR: tables, JSON, masking, and a redrive that moves a letter back.
func TestDLQ(t *testing.T) {
	js, e := allInOneNATS(t)
	deadLetters(t, js)

	out, err := ctm(t, e, "dlq", "list", "-reason", "rejected")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 3 || !strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(lines[1], "ord-3") || !strings.Contains(lines[2], "ord-1") {
		t.Errorf("dlq list -reason rejected = %v:\n%s\nwant a header, ord-3 then ord-1", err, out)
	}
	// Common flags after the words, the old -nats spelling, JSON.
	e2 := map[string]string{"DATA_DIR": e["DATA_DIR"]}
	out, err = ctm(t, e2, "-o", "json", "dlq", "list", "-business", "1001", "-nats", e["NATS_URL"])
	var list struct {
		DeadLetters []struct {
			Seq     uint64    `json:"seq"`
			Reason  string    `json:"reason"`
			EventID string    `json:"event_id"`
			Time    time.Time `json:"time"`
		} `json:"dead_letters"`
		More bool `json:"more"`
	}
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.DeadLetters) != 2 ||
		list.DeadLetters[0].EventID != "ord-2" || list.DeadLetters[0].Seq != 2 || list.DeadLetters[0].Time.IsZero() || list.More {
		t.Errorf("-o json dlq list -business 1001 = %v:\n%s\nwant ord-2 then ord-1 as JSON", err, out)
	}
	out, err = ctm(t, e, "dlq", "show", "1")
	if err != nil || !strings.Contains(out, "ord-1") || !strings.Contains(out, `"user_id":"…8888"`) || strings.Contains(out, "5511999998888") {
		t.Errorf("dlq show 1 = %v:\n%s\nwant the letter with user_id masked", err, out)
	}
	out, err = ctm(t, e, "dlq", "show", "1", "-reveal", "-o", "json")
	var shown struct {
		Seq     uint64          `json:"seq"`
		Message json.RawMessage `json:"message"`
	}
	if err != nil || json.Unmarshal([]byte(out), &shown) != nil || shown.Seq != 1 || !strings.Contains(string(shown.Message), "5511999998888") {
		t.Errorf("dlq show 1 -reveal -o json = %v:\n%s", err, out)
	}
	if _, err := ctm(t, e, "dlq", "show", "99"); err == nil || !strings.Contains(err.Error(), "no dead letter") {
		t.Errorf("dlq show 99 = %v; want no dead letter", err)
	}

	out, err = ctm(t, e, "dlq", "redrive", "-business", "2002", "-dry-run")
	if err != nil || !strings.Contains(out, "would redrive (dry run): 1 dead letters, rejected 1") || !strings.Contains(out, "ord-3") {
		t.Errorf("dlq redrive -business 2002 -dry-run = %v:\n%s", err, out)
	}
	out, err = ctm(t, e, "dlq", "redrive", "-seq", "3")
	if err != nil || !strings.Contains(out, "republished 1, deleted from DLQ 1") {
		t.Fatalf("dlq redrive -seq 3 = %v:\n%s", err, out)
	}
	conv, err := js.Stream(t.Context(), sender.StreamConversions)
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := conv.GetLastMsgForSubject(t.Context(), "conversions.whatsapp"); err != nil || !strings.Contains(string(msg.Data), "ord-3") {
		t.Errorf("CONVERSIONS after the redrive: %v, %v; want ord-3", msg, err)
	}
	if out, err := ctm(t, e, "dlq", "list"); err != nil || strings.Contains(out, "ord-3") || !strings.Contains(out, "ord-2") {
		t.Errorf("dlq list after the redrive = %v:\n%s\nwant ord-3 gone", err, out)
	}

	for _, args := range [][]string{
		{"dlq", "list", "-reason", "bogus"}, {"dlq", "show"}, {"dlq", "frob"}, {"dlq", "list", "-o", "yaml"},
		{"dlq", "redrive"}, {"dlq", "redrive", "-reason", "in_doubt"}, {"dlq", "redrive", "-reason", "forward,rejected"},
	} {
		if _, err := ctm(t, e, args...); err == nil {
			t.Errorf("ctm %q = nil; want an error", args)
		}
	}
	if _, err := ctm(t, map[string]string{"DATA_DIR": t.TempDir()}, "dlq", "list"); err == nil || !strings.Contains(err.Error(), "NATS_URL") {
		t.Errorf("dlq list with neither NATS_URL nor credentials = %v; want it to name NATS_URL", err)
	}
}

// ctm streams shows each stream, the sender consumer's lag and ack
// pending, and what is parked and dead-lettered.
func TestStreams(t *testing.T) {
	js, e := allInOneNATS(t)
	deadLetters(t, js)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: sender.StreamParked, Subjects: []string{sender.SubjectParked}}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateConsumer(t.Context(), sender.StreamConversions, jetstream.ConsumerConfig{
		Durable: sender.ConsumerName, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := js.Publish(t.Context(), "conversions.whatsapp", fmt.Appendf(nil, `{"event_id":"e%d"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(t.Context(), "parked.1001", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	// Two delivered and not acked: ack pending 2, lag 3.
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range batch.Messages() {
		n++
	}
	if n != 2 {
		t.Fatalf("fetched %d; want 2", n)
	}

	out, err := ctm(t, e, "streams", "-o", "json")
	var got struct {
		Streams []streamView `json:"streams"`
	}
	if err != nil || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("streams -o json = %v:\n%s", err, out)
	}
	byName := map[string]streamView{}
	for _, s := range got.Streams {
		byName[s.Name] = s
	}
	if c := byName[sender.StreamConversions]; c.Messages != 5 || len(c.Consumers) != 1 ||
		c.Consumers[0] != (consumerView{Name: sender.ConsumerName, Pending: 3, AckPending: 2, MaxAckPending: 100}) {
		t.Errorf("CONVERSIONS = %+v; want 5 messages, consumer sender pending 3, ack pending 2 of 100", c)
	}
	if byName[sender.StreamParked].Messages != 1 || byName[sender.StreamDLQ].Messages != 3 {
		t.Errorf("PARKED, DLQ = %d, %d messages; want 1, 3", byName[sender.StreamParked].Messages, byName[sender.StreamDLQ].Messages)
	}
	out, err = ctm(t, e, "streams")
	for _, want := range []string{"CONSUMER", "CONVERSIONS/sender", "parked: 1 messages", "dead letters: 3"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("streams = %v:\n%s\nwant %q in it", err, out, want)
		}
	}
}
