package sender

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
)

// fakeMsg records what settle did to a message. Methods it does not
// implement panic through the nil interface: settle must not call them.
type fakeMsg struct {
	jetstream.Msg
	data []byte
	err  error // returned by Ack, Nak and InProgress

	mu    sync.Mutex
	calls []string
	delay time.Duration
}

func (m *fakeMsg) record(c string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, c)
	return m.err
}

func (m *fakeMsg) Data() []byte         { return m.data }
func (m *fakeMsg) Subject() string      { return "conversions.whatsapp" }
func (m *fakeMsg) Headers() nats.Header { return nats.Header{} }
func (m *fakeMsg) Ack() error           { return m.record("ack") }
func (m *fakeMsg) InProgress() error    { return m.record("wip") }
func (m *fakeMsg) NakWithDelay(d time.Duration) error {
	m.mu.Lock()
	m.delay = d
	m.mu.Unlock()
	return m.record("nak")
}

func (m *fakeMsg) got() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.calls, ",")
}

// newSettleService is a Service with just what settle needs: a JetStream
// with the DLQ and PARKED streams, metrics and an observed log.
func newSettleService(t *testing.T) (*Service, *observer.ObservedLogs) {
	t.Helper()
	js, err := jetstream.New(natstest.RunJetStream(t).Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ensureStreams(t.Context(), js, nil, 1, 1000, time.Minute); err != nil {
		t.Fatal(err)
	}
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	s := &Service{cfg: DefaultConfig(), log: zap.New(core), js: js, m: m, now: time.Now}
	s.pipe = newPipeline(s)
	return s, logs
}

func counted(t *testing.T, s *Service, label string) float64 {
	t.Helper()
	var m dto.Metric
	if err := s.m.conversions.WithLabelValues(label, "whatsapp").Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func newTestItem(seq uint64, err error) (*item, *fakeMsg) {
	m := &fakeMsg{data: []byte(`{"event_id":"e"}`), err: err}
	it := &item{msg: m, seq: seq, published: time.Now()}
	it.conv.Channel, it.conv.EventID = "whatsapp", "e"
	return it, m
}

func TestSettleOutcomes(t *testing.T) {
	s, _ := newSettleService(t)
	tests := []struct {
		name      string
		out       outcome
		want      string  // calls on the message
		follower  string  // calls on a follower
		label     string  // sender_conversions_total outcome counted
		count     float64 // how often: the follower may count there too
		minDelay  time.Duration
		stream    string // where a copy must be stored
		streamSeq uint64
	}{
		{name: "sent", count: 1, out: sent(), want: "ack", follower: "ack", label: outcomeSent},
		{name: "duplicate", count: 2, out: duplicate(), want: "ack", follower: "ack", label: outcomeDuplicate},
		{name: "retry", count: 2, out: retry(2 * time.Second), want: "nak", follower: "nak", label: outcomeRetried, minDelay: 2 * time.Second},
		{name: "waiting context", count: 1, out: retryAs(time.Second, outcomeWaitingContext), want: "nak", follower: "nak", label: outcomeWaitingContext, minDelay: time.Second},
		{name: "dead letter", count: 1, out: deadLetter(ReasonRejected, "meta said no"), want: "ack", follower: "nak", label: ReasonRejected, stream: StreamDLQ, streamSeq: 1},
		{name: "park", count: 1, out: park("b1"), want: "ack", follower: "nak", label: outcomePaused, stream: StreamParked, streamSeq: 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it, m := newTestItem(uint64(100+i), nil)
			f, fm := newTestItem(uint64(200+i), nil)
			it.followers = []*item{f}
			before := counted(t, s, tt.label)
			var ss settlements
			ss.add(it, tt.out)
			ss.add(it, retry(0)) // a second outcome for the same message is ignored
			s.settle(ss)
			s.settle(settlements{{it, sent()}}) // and so is a second settle
			if got := m.got(); got != tt.want {
				t.Errorf("message: %s; want %s", got, tt.want)
			}
			if got := fm.got(); got != tt.follower {
				t.Errorf("follower: %s; want %s", got, tt.follower)
			}
			if m.delay < tt.minDelay || m.delay > tt.minDelay+tt.minDelay/10 {
				t.Errorf("nak delay %v; want %v plus at most a tenth", m.delay, tt.minDelay)
			}
			if got := counted(t, s, tt.label) - before; got != tt.count {
				t.Errorf("counted %v as %s; want %v", got, tt.label, tt.count)
			}
			if tt.stream != "" {
				if n := streamMsgs(t, s.js, tt.stream); n != tt.streamSeq {
					t.Errorf("%s holds %d messages; want %d", tt.stream, n, tt.streamSeq)
				}
			}
		})
	}
}

// A copy JetStream does not store leaves the original handed back, never
// acked: nothing is lost.
func TestSettleDivertFailsHandsBack(t *testing.T) {
	s, logs := newSettleService(t)
	if err := s.js.DeleteStream(t.Context(), StreamDLQ); err != nil {
		t.Fatal(err)
	}
	it, m := newTestItem(1, nil)
	s.settle(settlements{{it, deadLetter(ReasonInvalid, "bad")}})
	if got := m.got(); got != "nak" {
		t.Fatalf("message: %s; want nak (the dead letter was not stored)", got)
	}
	if logs.FilterMessageSnippet("not stored").Len() != 1 {
		t.Errorf("no warning about the copy not stored: %v", logs.All())
	}
}

// Ack and Nak errors are logged, once per settle, not dropped.
func TestSettleAckErrorsLogged(t *testing.T) {
	s, logs := newSettleService(t)
	a, am := newTestItem(1, errors.New("nats: connection closed"))
	n, nm := newTestItem(2, errors.New("nats: connection closed"))
	s.settle(settlements{{a, sent()}, {n, retry(time.Second)}})
	if am.got() != "ack" || nm.got() != "nak" {
		t.Fatalf("calls: %s, %s; want ack, nak", am.got(), nm.got())
	}
	for _, snippet := range []string{"ack failed", "nak failed"} {
		if logs.FilterMessageSnippet(snippet).Len() != 1 {
			t.Errorf("no %q warning: %v", snippet, logs.All())
		}
	}
}

// The keep-alive marks held, unsettled messages in progress and logs
// failures; a settled message is left alone and forgotten.
func TestKeepAliveHeld(t *testing.T) {
	s, logs := newSettleService(t)
	held, hm := newTestItem(1, errors.New("nats: timeout"))
	done, dm := newTestItem(2, nil)
	s.pipe.hold([]*item{held, done})
	s.settle(settlements{{done, sent()}})
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() { s.pipe.keepAlive(ctx, 10*time.Millisecond); close(stopped) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(hm.got(), "wip") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-stopped
	if !strings.Contains(hm.got(), "wip") {
		t.Fatalf("held message: %s; want in-progress acks", hm.got())
	}
	if dm.got() != "ack" {
		t.Errorf("settled message: %s; want only its ack", dm.got())
	}
	if logs.FilterMessageSnippet("in-progress ack failed").Len() == 0 {
		t.Error("failed in-progress acks not logged")
	}
}

// A follower with followers of its own (a fetch's primary that met another
// copy in its request) settles them too: none is left held for ever.
func TestSettleNestedFollowers(t *testing.T) {
	s, _ := newSettleService(t)
	for _, o := range []outcome{sent(), retry(time.Second)} {
		p, _ := newTestItem(1, nil)
		f, _ := newTestItem(2, nil)
		ff, ffm := newTestItem(3, nil)
		f.followers = []*item{ff}
		p.followers = []*item{f}
		s.settle(settlements{{p, o}})
		if ffm.got() == "" {
			t.Errorf("outcome %v: the follower's follower was not settled", o.kind)
		}
	}
}
