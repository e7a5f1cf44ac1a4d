package test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// faultWant is one published conversion and the fate it must meet.
type faultWant struct {
	EventID string   // "" when the message has no readable event_id
	MsgIDs  []string // the Nats-Msg-Ids it was published with
	Reason  string   // "" = accepted by Meta exactly once; else the dead-letter reason
}

// key names the conversion in reports.
func (w faultWant) key() string {
	if w.EventID != "" {
		return w.EventID
	}
	return "msg:" + w.MsgIDs[0]
}

// faultIndex is every conversion a rig published, in order.
type faultIndex struct {
	list    []faultWant
	byEvent map[string]int
	byMsg   map[string]int
}

func newFaultIndex() faultIndex {
	return faultIndex{byEvent: map[string]int{}, byMsg: map[string]int{}}
}

// expect registers a published conversion (again for another copy of the
// same event_id: its message ids add up).
func (r *faultRig) expect(w faultWant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i, ok := r.wants.byEvent[w.EventID]; ok && w.EventID != "" {
		r.wants.list[i].MsgIDs = append(r.wants.list[i].MsgIDs, w.MsgIDs...)
		for _, id := range w.MsgIDs {
			r.wants.byMsg[id] = i
		}
		return
	}
	i := len(r.wants.list)
	r.wants.list = append(r.wants.list, w)
	if w.EventID != "" {
		r.wants.byEvent[w.EventID] = i
	}
	for _, id := range w.MsgIDs {
		r.wants.byMsg[id] = i
	}
}

// mark and since delimit the conversions one part of a test published.
func (r *faultRig) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.wants.list)
}

func (r *faultRig) since(mark int) []faultWant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.wants.list[mark:])
}

// faultDead is one message of the DLQ stream.
type faultDead struct {
	Reason, EventID, MsgID, Error, Subject string
}

// deadLetters returns every dead letter so far (read incrementally).
func (r *faultRig) deadLetters(ctx context.Context) ([]faultDead, error) {
	s, err := r.js.Stream(ctx, "DLQ")
	if err != nil {
		return nil, fmt.Errorf("dlq stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next = max(r.next, info.State.FirstSeq, 1)
	for ; r.next <= info.State.LastSeq; r.next++ {
		m, err := s.GetMsg(ctx, r.next)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		h := m.Header
		r.dead = append(r.dead, faultDead{Reason: h.Get("Ctm-Dlq-Reason"), EventID: h.Get("Ctm-Event-Id"),
			MsgID: h.Get("Ctm-Dlq-Msg-Id"), Error: h.Get("Ctm-Dlq-Error"), Subject: m.Subject})
	}
	return slices.Clone(r.dead), nil
}

// idle reports whether the sender's consumer has nothing left to deliver or
// to settle (then every effect, Graph accept or dead letter, is visible):
// PARKED empty, nothing pending or unacked, and the consumer's delivered
// and ack floor sequences at CONVERSIONS' last sequence. floor is that last
// sequence, for account to see two idle snapshots agree.
func (r *faultRig) idle(ctx context.Context) (idle bool, floor uint64, state string) {
	// Messages of paused businesses wait in PARKED until they come back. A
	// message moving either way is published before it is acked or deleted,
	// so PARKED, the consumer and PARKED again all empty means quiet.
	before, err := r.parked(ctx)
	if err != nil {
		return false, 0, "parked: " + err.Error()
	}
	st, err := r.js.Stream(ctx, "CONVERSIONS")
	if err != nil {
		return false, 0, "stream: " + err.Error()
	}
	si, err := st.Info(ctx)
	if err != nil {
		return false, 0, "stream info: " + err.Error()
	}
	c, err := r.js.Consumer(ctx, "CONVERSIONS", "sender")
	if err != nil {
		return false, 0, "consumer: " + err.Error()
	}
	info, err := c.Info(ctx)
	if err != nil {
		return false, 0, "consumer info: " + err.Error()
	}
	after, err := r.parked(ctx)
	if err != nil {
		return false, 0, "parked: " + err.Error()
	}
	last := si.State.LastSeq
	idle = before == 0 && info.NumPending == 0 && info.NumAckPending == 0 && after == 0 &&
		info.Delivered.Stream >= last && info.AckFloor.Stream >= last
	return idle, last, fmt.Sprintf("stream last seq %d; consumer: delivered %d, ack floor %d, %d pending, %d unacked, %d redelivered; parked: %d",
		last, info.Delivered.Stream, info.AckFloor.Stream, info.NumPending, info.NumAckPending, info.NumRedelivered, after)
}

// parked is the number of messages in stream PARKED (0 before it exists).
func (r *faultRig) parked(ctx context.Context) (uint64, error) {
	st, err := r.js.Stream(ctx, "PARKED")
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	si, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return si.State.Msgs, nil
}

// faultAccountOpts are a scenario's allowances.
type faultAccountOpts struct {
	// InDoubtOK accepts a dead letter in_doubt (with the Graph count 0 or 1)
	// for a conversion that should be sent or rejected by Meta: the
	// scenario kills something between a claim and Meta's answer, where the
	// sender cannot know what Meta did.
	InDoubtOK bool
	Within    time.Duration // how long to wait for the pipeline to settle (default 90s)
}

// faultTally counts fates, for logs and scenario-specific checks.
type faultTally struct {
	Sent      int
	InDoubt   int // in_doubt dead letters accepted (InDoubtOK)
	InDoubtAt int // of those, how many Meta had (Graph count 1)
	Dead      map[string]int
}

// account waits until the pipeline settles and every conversion in wants
// has met its fate, then fails t with a table of those that did not: lost
// (neither at Meta nor a dead letter), duplicated (Meta has it twice),
// wrong reason, or both sent and dead-lettered. It also reports Graph
// events and dead letters that belong to no conversion the rig published.
func account(t *testing.T, r *faultRig, wants []faultWant, o faultAccountOpts) faultTally {
	t.Helper()
	if o.Within == 0 {
		o.Within = 90 * time.Second
	}
	deadline := time.Now().Add(o.Within)
	var (
		problems []string
		tally    faultTally
		state    string
		prev     string // the previous idle snapshot: floor and dead letters
	)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		idle, floor, st := r.idle(ctx)
		state = st
		dead, err := r.deadLetters(ctx)
		cancel()
		if err == nil {
			problems, tally = r.check(wants, dead, o.InDoubtOK)
		} else {
			state += "; " + err.Error()
		}
		// Settled: two idle snapshots in a row that agree (the consumer's
		// delivered and ack floor at the stream's last sequence, the same
		// dead letters), not the first idle one, which may lag the last
		// publish or the last dead letter's store.
		snap := ""
		if err == nil && idle {
			snap = fmt.Sprintf("%d/%d", floor, len(dead))
		}
		settled := snap != "" && snap == prev
		prev = snap
		if settled && len(problems) == 0 {
			t.Logf("accounted for %d conversions: %d sent once, %d in doubt (%d of them at Meta), dead letters %v",
				len(wants), tally.Sent, tally.InDoubt, tally.InDoubtAt, tally.Dead)
			return tally
		}
		if settled || time.Now().After(deadline) {
			break // settled with problems, or never settled
		}
		time.Sleep(200 * time.Millisecond) // poll
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONVERSION\tWANT\tGRAPH\tDEAD LETTERS\tPROBLEM")
	shown := problems
	if len(shown) > 40 {
		shown = shown[:40]
	}
	for _, p := range shown {
		fmt.Fprintln(tw, p)
	}
	tw.Flush()
	kinds := map[string]int{}
	for _, p := range problems {
		f := strings.Split(p, "\t")
		kinds[f[len(f)-1]]++
	}
	t.Fatalf("%d of %d conversions not accounted for exactly once (%s; %s):\n%s%s", len(problems), len(wants),
		state, faultKinds(kinds), b.String(), faultMore(len(problems)-len(shown)))
	return tally
}

func faultKinds(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func faultMore(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf("... and %d more\n", n)
}

// check classifies the fate of each of wants from the Graph counts and the
// dead letters: one tab-separated table row per problem.
func (r *faultRig) check(wants []faultWant, dead []faultDead, inDoubtOK bool) ([]string, faultTally) {
	counts := r.graph.CountByEventID()
	r.mu.Lock()
	defer r.mu.Unlock()
	var problems []string
	row := func(key, want string, graph int, dls []string, problem string) {
		problems = append(problems, fmt.Sprintf("%s\t%s\t%d\t%s\t%s", key, want, graph, faultList(dls), problem))
	}
	deadOf := map[int][]string{}
	perMsg := map[string]int{} // dead letters per original message
	for _, d := range dead {
		if d.MsgID != "" {
			perMsg[d.MsgID]++
		}
		i, ok := r.wants.byEvent[d.EventID]
		if !ok || d.EventID == "" {
			i, ok = r.wants.byMsg[d.MsgID]
		}
		if !ok {
			row(faultWant{EventID: d.EventID, MsgIDs: []string{d.MsgID}}.key(), "-", 0, []string{d.Reason}, "unexpected dead letter")
			continue
		}
		deadOf[i] = append(deadOf[i], d.Reason)
	}
	for id, n := range counts {
		if _, ok := r.wants.byEvent[id]; !ok || id == "" {
			row(id, "-", n, nil, "unexpected at Graph")
		}
	}
	tally := faultTally{Dead: map[string]int{}}
	for _, w := range wants {
		i, ok := r.wants.byEvent[w.EventID]
		if !ok || w.EventID == "" {
			i = r.wants.byMsg[w.MsgIDs[0]]
		}
		dls := deadOf[i]
		g := 0
		if w.EventID != "" {
			g = counts[w.EventID]
		}
		want := "sent once"
		if w.Reason != "" {
			want = "dlq." + w.Reason
		}
		inDoubt := len(dls) > 0 && !slices.ContainsFunc(dls, func(s string) bool { return s != "in_doubt" })
		twice := slices.ContainsFunc(w.MsgIDs, func(id string) bool { return perMsg[id] > 1 })
		switch {
		case g > 1:
			row(w.key(), want, g, dls, "duplicated")
		case twice: // the DLQ's duplicate window should have dropped the copy
			row(w.key(), want, g, dls, "dead-lettered twice")
		case w.Reason == "" && g == 1 && len(dls) == 0:
			tally.Sent++
		case (w.Reason == "" || w.Reason == "rejected") && inDoubt && inDoubtOK:
			tally.InDoubt++
			tally.InDoubtAt += g
		case g == 0 && len(dls) == 0:
			row(w.key(), want, g, dls, "lost")
		case w.Reason != "" && g == 0 && !slices.ContainsFunc(dls, func(s string) bool { return s != w.Reason }):
			tally.Dead[w.Reason]++
		case g == 1 && len(dls) > 0:
			row(w.key(), want, g, dls, "sent and dead-lettered")
		case w.Reason != "" && g == 1:
			row(w.key(), want, g, dls, "sent, want a dead letter")
		default:
			row(w.key(), want, g, dls, "wrong reason")
		}
	}
	slices.Sort(problems)
	return problems, tally
}

func faultList(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}
