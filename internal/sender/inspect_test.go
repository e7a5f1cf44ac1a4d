package sender_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/ctmpipe/ctmpipe/internal/sender"
)

type letter struct {
	Seq     uint64
	Subject string
	Reason  string
	Error   string
	EventID string
	Header  nats.Header
	Data    []byte
}

// dlq returns the dead letters stored now.
func (e *env) dlq() []letter {
	e.t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, sender.StreamDLQ)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []letter
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, letter{Seq: seq, Subject: m.Subject, Reason: m.Header.Get(sender.HeaderReason),
			Error: m.Header.Get(sender.HeaderError), EventID: m.Header.Get(sender.HeaderEventID), Header: m.Header, Data: m.Data})
	}
	return out
}

// waitDLQ waits until n dead letters are stored and returns them.
func (e *env) waitDLQ(d time.Duration, n int) []letter {
	e.t.Helper()
	var got []letter
	e.waitFor(d, fmt.Sprintf("%d dead letters", n), func() bool {
		got = e.dlq()
		return len(got) >= n
	})
	return got
}

// metric returns the value of the sample of name whose labels include want.
func (e *env) metric(name string, want map[string]string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m, want) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// readLines returns the non-empty lines of a file.
func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			out = append(out, l)
		}
	}
	return out
}
