package test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
)

// Scenario 4: the Graph API misbehaves the ways Meta's does. Each part
// streams its own conversations through one pipeline and accounts for
// them: transient errors and throttling are retried until sent once, a
// revoked token pauses its business (nothing dead-lettered) until it is
// fixed, invalid events are isolated from their batches and dead-lettered
// rejected, and lost responses end in doubt, never doubled.
func TestFaultGraph(t *testing.T) {
	t.Parallel() // own ports, dirs and servers (newFaultRig)
	r := newFaultRig(t, faultOptions{
		Datasets:  faultDatasetsFile,
		Tokens:    []string{fakegraph.DefaultToken, faultOwnToken},
		SenderEnv: []string{"FAULT_PAGE2_TOKEN=" + faultOwnToken},
	})
	failures := func(steps ...func()) []faultStep {
		var out []faultStep
		for i, f := range steps {
			out = append(out, faultStep{At: int64(100 + 120*i), Do: f})
		}
		return out
	}

	t.Run("server errors", func(t *testing.T) {
		mark, rejected := r.mark(), r.graph.Rejected()
		r.during(t, &faultStream{N: 600, Batch: 10, PerSecond: 200}, failures(
			func() { r.graph.FailNext(4, 500, 2) },
			func() { r.graph.FailNext(3, 500, 1) },
			func() { r.graph.FailNext(3, 502, 0); r.graph.FailNext(2, 503, 0) },
		)...)
		account(t, r, r.since(mark), faultAccountOpts{})
		if n := r.graph.Rejected() - rejected; n < 12 {
			t.Errorf("%d requests failed at the fake; want the 12 injected", n)
		}
	})

	t.Run("throttling", func(t *testing.T) {
		mark, rejected := r.mark(), r.graph.Rejected()
		var steps []func()
		for _, code := range []int{4, 17, 32, 613, 80004} {
			steps = append(steps, func() { r.graph.FailNext(2, 400, code) })
		}
		steps = append(steps, func() { r.graph.SetUsage(95) }) // near the limit: the sender slows down
		r.during(t, &faultStream{N: 900, Batch: 10, PerSecond: 200}, failures(steps...)...)
		account(t, r, r.since(mark), faultAccountOpts{})
		r.graph.SetUsage(0)
		if n := r.graph.Rejected() - rejected; n < 10 {
			t.Errorf("%d requests failed at the fake; want the 10 injected", n)
		}
	})

	t.Run("token error pauses one business", func(t *testing.T) {
		mark := r.mark()
		r.graph.RevokeToken(faultOwnToken)
		page2 := faultBusinesses["messenger"][1]
		var paused, others []faultConv
		for range 10 {
			paused = append(paused, faultDeliverAndPublish(t, r, r.convs(10, "messenger", &page2))...)
			others = append(others, faultDeliverAndPublish(t, r, r.convs(10, "instagram", nil))...)
		}
		p := r.currentSender()
		// The others go on; the paused business is tried again after
		// PAUSE_INTERVAL (1s) and still fails.
		waitFor(t, 60*time.Second, "the other businesses' events at Meta", func() bool { return faultAllAt(r, others) })
		waitFor(t, 60*time.Second, "the sender to pause the business and probe it again", func() bool {
			return strings.Contains(p.Output(), "business paused") && strings.Contains(p.Output(), "business still paused")
		})
		counts := r.graph.CountByEventID()
		dead, err := r.deadLetters(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range paused {
			if counts[c.EventID] != 0 {
				t.Errorf("%s of the paused business reached Meta", c.EventID)
			}
		}
		if len(dead) != 0 {
			t.Errorf("%d dead letters while a business is paused; want none (first: %+v)", len(dead), dead[0])
		}
		r.graph.SetTokens(fakegraph.DefaultToken, faultOwnToken) // the operator fixes the token
		account(t, r, r.since(mark), faultAccountOpts{})
		if !regexp.MustCompile(`"msg":"business resumed".*"business_id":"` + page2.ID).MatchString(p.Output()) {
			t.Errorf("no 'business resumed' log for the paused business")
		}
	})

	t.Run("invalid events in batches", func(t *testing.T) {
		mark := r.mark()
		fate := func(c faultConv) string {
			if c.n%37 == 5 { // about 3%, spread over batches and businesses
				r.graph.RejectEventID(c.EventID)
				return "rejected"
			}
			return ""
		}
		r.during(t, &faultStream{N: 800, Batch: 10, PerSecond: 400, Fate: fate})
		tally := account(t, r, r.since(mark), faultAccountOpts{})
		if tally.Dead["rejected"] == 0 {
			t.Errorf("no rejected dead letters")
		}
	})

	t.Run("lost responses", func(t *testing.T) {
		mark := r.mark()
		r.during(t, &faultStream{N: 400, Batch: 10, PerSecond: 200}, faultStep{At: 100, Do: func() { r.graph.DropNext(2) }})
		// Meta took the events of a dropped response; the sender cannot
		// know: they must end in doubt, and never be sent twice.
		tally := account(t, r, r.since(mark), faultAccountOpts{InDoubtOK: true})
		if tally.InDoubtAt == 0 {
			t.Errorf("no in_doubt dead letter of an event Meta has; want the events of the dropped responses")
		}
	})
}

// faultDeliverAndPublish stores the contexts of convs (one delivery) and
// publishes their conversions, expecting each sent once.
func faultDeliverAndPublish(t *testing.T, r *faultRig, convs []faultConv) []faultConv {
	t.Helper()
	if code := r.post(faultWebhook(convs, time.Now())); code != 200 {
		t.Fatalf("webhook = %d; want 200", code)
	}
	for _, c := range convs {
		r.expect(faultWant{EventID: c.EventID, MsgIDs: []string{c.EventID}})
		if err := r.publish(c.subject(), c.EventID, c.conversion(time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	return convs
}

// faultAllAt reports whether Meta has every one of convs.
func faultAllAt(r *faultRig, convs []faultConv) bool {
	counts := r.graph.CountByEventID()
	for _, c := range convs {
		if counts[c.EventID] == 0 {
			return false
		}
	}
	return true
}
