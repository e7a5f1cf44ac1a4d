package forward

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/jsfetch"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

// A dead letter redriven after its destination recovered is delivered, to
// that destination only, with its original delivery id.
func TestRedriveDeliversDeadLetter(t *testing.T) {
	_, js := runJetStream(t)
	flaky, other := newDownstream(t, 0), newDownstream(t, 0)
	flaky.setDead(true)
	cfg := testConfig(200*time.Millisecond, flaky.URL, other.URL)
	e := newEnqueuer(t, js, cfg)
	f, _ := startForwarder(t, js, cfg, zap.NewNop())
	bodies := bodiesN(t, 0, 3)
	enqueueAll(t, e, bodies)
	host := strings.TrimPrefix(flaky.URL, "http://")
	poll.CheckFor(t, 30*time.Second, func() error {
		if got := counter(f, host, outcomeDead); got != 3 {
			return fmt.Errorf("dead = %v; want 3", got)
		}
		return nil
	})
	poll.CheckFor(t, 30*time.Second, func() error { return wantAll(other, bodies) })

	flaky.setDead(false)
	dry, err := Redrive(t.Context(), js, RedriveOptions{Hosts: []string{host}, DryRun: true})
	if err != nil || dry.Matched != 3 || dry.Republished != 0 {
		t.Fatalf("dry-run Redrive = %+v, %v; want 3 matched, none republished", dry, err)
	}
	res, err := Redrive(t.Context(), js, RedriveOptions{Limit: 2})
	if err != nil || res.Matched != 2 || res.Republished != 2 {
		t.Fatalf("Redrive(limit 2) = %+v, %v; want 2 republished", res, err)
	}
	res, err = Redrive(t.Context(), js, RedriveOptions{Hosts: []string{host}})
	if err != nil || res.Republished != 1 {
		t.Fatalf("Redrive = %+v, %v; want the last one republished", res, err)
	}
	poll.CheckFor(t, 30*time.Second, func() error { return wantAll(flaky, bodies) })
	if n := len(readDeadLetters(t, js)); n != 0 {
		t.Errorf("dlq.forward holds %d letters after redrive; want 0", n)
	}
	if _, n := other.bodies(); n != 3 {
		t.Errorf("the other destination got %d deliveries; want 3 (a redrive is for its own destination)", n)
	}
}

// A dead letter whose destination was removed from FORWARD_URLS is left
// in DLQ: FORWARD would keep it for nobody.
func TestRedriveSkipsRemovedDestination(t *testing.T) {
	_, js := runJetStream(t)
	gone := newDownstream(t, 0)
	gone.setDead(true)
	cfg := testConfig(100*time.Millisecond, gone.URL)
	e := newEnqueuer(t, js, cfg)
	f, stop := startForwarder(t, js, cfg, zap.NewNop())
	enqueueAll(t, e, bodiesN(t, 0, 1))
	host := strings.TrimPrefix(gone.URL, "http://")
	poll.CheckFor(t, 30*time.Second, func() error {
		if got := counter(f, host, outcomeDead); got != 1 {
			return fmt.Errorf("dead = %v; want 1", got)
		}
		return nil
	})
	stop() // a running Forwarder would create the consumer again
	d, _ := parseDestinations(cfg.URLs)
	if err := js.DeleteConsumer(t.Context(), StreamForward, d[0].consumer()); err != nil {
		t.Fatal(err)
	}
	res, err := Redrive(t.Context(), js, RedriveOptions{})
	if err != nil || res.Skipped != 1 || res.Republished != 0 {
		t.Fatalf("Redrive = %+v, %v; want 1 skipped", res, err)
	}
	if n := len(readDeadLetters(t, js)); n != 1 {
		t.Errorf("dlq.forward holds %d letters; want the skipped one", n)
	}
}

func readDeadLetters(t *testing.T, js jetstream.JetStream) []jetstream.Msg {
	t.Helper()
	s, err := js.Stream(t.Context(), streamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.OrderedConsumer(t.Context(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{SubjectDeadLetter}})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	err = jsfetch.Pending(t.Context(), cons, 0, func(m jetstream.Msg, _ *jetstream.MsgMetadata) (bool, error) {
		out = append(out, m)
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
