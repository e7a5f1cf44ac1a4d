package sender

import (
	"cmp"
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
)

// kind is what becomes of a message.
type kind uint8

// The kinds of outcome. Every stage (parse, join, dataset, claim, post)
// returns one per message it is done with; settle applies them.
const (
	kindSent       kind = iota + 1 // Meta accepted it: Ack
	kindDuplicate                  // the ledger says it was sent already: Ack
	kindRetry                      // hand back: NakWithDelay(delay)
	kindDeadLetter                 // copy to dlq.<reason>, then Ack
	kindPark                       // copy to parked.<business>, then Ack
)

// outcome is the fate of one message.
type outcome struct {
	kind  kind
	delay time.Duration // kindRetry: when it comes again
	// label is the sender_conversions_total outcome of a retry: retried,
	// waiting_context or paused (a paused business handed back, not parked).
	label        string
	reason, text string // kindDeadLetter: dlq.<reason>, and why (Ctm-Dlq-Error)
	business     string // kindPark: whose PARKED subject
	// why is the trail's reason of a retry (internal/trail); sentTo is
	// where a sent event went, with Meta's answer.
	why    string
	sentTo *trail.SentTo
}

func sent() outcome { return outcome{kind: kindSent} }

// sentVia is sent to dataset with Meta's answer resp, at at, by the
// request reqID of the attempt log.
func sentVia(dataset string, resp capi.Response, at time.Time, reqID string) outcome {
	return outcome{kind: kindSent, sentTo: &trail.SentTo{DatasetID: dataset, At: trail.At(at),
		FBTraceID: resp.FBTraceID, EventsReceived: resp.EventsReceived, RequestID: reqID}}
}

// because is o with the trail's reason why.
func (o outcome) because(why string) outcome { o.why = why; return o }
func duplicate() outcome                     { return outcome{kind: kindDuplicate} }

// retry hands a message back to come again after d.
func retry(d time.Duration) outcome { return outcome{kind: kindRetry, delay: d, label: outcomeRetried} }

// retryAs is retry counted as label (waiting_context, paused).
func retryAs(d time.Duration, label string) outcome {
	return outcome{kind: kindRetry, delay: d, label: cmp.Or(label, outcomeRetried)}
}

func deadLetter(reason, text string) outcome {
	return outcome{kind: kindDeadLetter, reason: reason, text: text}
}

func park(business string) outcome { return outcome{kind: kindPark, business: business} }

// settlement pairs a message with its outcome.
type settlement struct {
	it  *item
	out outcome
}

// settlements collects the outcomes of a stage.
type settlements []settlement

func (ss *settlements) add(it *item, o outcome) { *ss = append(*ss, settlement{it, o}) }

func (ss *settlements) addAll(items []*item, o outcome) {
	for _, it := range items {
		ss.add(it, o)
	}
}

// divertWait bounds the wait for JetStream to store a dead letter or a
// parked copy; it is well below AckWait, during which the original stays ours.
const divertWait = 10 * time.Second

// settle applies outcomes; it is the only place that acks, naks or diverts
// a conversion. Its contract:
//
//   - Idempotent: a message is settled once. The first outcome given for
//     it wins; a later one is ignored (a shutdown's hand-back after a
//     request's answer, say). Copies of the same event in one fetch
//     (followers) are settled with their primary: acked as duplicates when
//     it was sent or found sent, else handed back after a second to settle
//     on their own.
//   - Nothing is acked before it is safe: a dead letter or a parked copy is
//     published first and the original acked only once JetStream stored the
//     copy; if that fails, the original is handed back (1 s) and comes again.
//   - An Ack, Nak or InProgress that fails (NATS away) is logged, never
//     retried here: JetStream redelivers the message after AckWait. A lost
//     Ack of a sent event is safe, since the redelivered copy finds the
//     ledger's sent marker and is acked as a duplicate; a lost Ack of a
//     diverted one is safe, since the copy published again carries the same
//     Nats-Msg-Id and the stream drops it. A lost Nak only delays.
//   - It blocks only while waiting for diverted copies (at most divertWait),
//     and never on ctx: the outcomes were decided, so they are applied even
//     during a shutdown.
func (s *Service) settle(ss settlements) {
	if len(ss) == 0 {
		return
	}
	type diverted struct {
		it    *item
		out   outcome
		label string
		fut   jetstream.PubAckFuture
		err   error
	}
	var div []diverted
	var ackFailed, nakFailed int
	var ackErr, nakErr error
	for _, st := range ss {
		it, o := st.it, st.out
		if it.settled.Swap(true) {
			continue
		}
		if o.kind != kindDeadLetter && o.kind != kindPark {
			s.note(it, o, 0) // diverted ones once their copy is stored
		}
		switch o.kind {
		case kindSent, kindDuplicate:
			label := outcomeSent
			if o.kind == kindDuplicate {
				label = outcomeDuplicate
			}
			if err := s.ackNow(it, label); err != nil {
				ackFailed++
				ackErr = cmp.Or(ackErr, err)
			}
			for _, f := range followers(it) {
				if !f.settled.Swap(true) {
					if err := s.ackNow(f, outcomeDuplicate); err != nil {
						ackFailed++
						ackErr = cmp.Or(ackErr, err)
					}
				}
			}
			continue
		case kindRetry:
			if err := s.nakNow(it, o.delay, o.label); err != nil {
				nakFailed++
				nakErr = cmp.Or(nakErr, err)
			}
		case kindDeadLetter, kindPark:
			var m *nats.Msg
			label := o.reason
			if o.kind == kindPark {
				m, label = parkMsg(it, o.business), outcomePaused
			} else {
				m = deadLetterMsg(it, o.reason, o.text, s.now())
			}
			ctx, cancel := context.WithTimeout(context.Background(), divertWait)
			err := fit(ctx, s.js, m, m.Header.Get(jetstream.MsgIDHeader))
			cancel()
			var fut jetstream.PubAckFuture
			if err == nil {
				fut, err = s.js.PublishMsgAsync(m)
			}
			div = append(div, diverted{it: it, out: o, label: label, fut: fut, err: err})
		}
		for _, f := range followers(it) {
			if !f.settled.Swap(true) {
				if err := s.nakNow(f, time.Second, outcomeRetried); err != nil {
					nakFailed++
					nakErr = cmp.Or(nakErr, err)
				}
			}
		}
	}
	var divFailed int
	var divErr error
	var dead deadCounts
	timeout := time.NewTimer(divertWait)
	defer timeout.Stop()
	for _, d := range div {
		err := d.err
		var seq uint64
		if err == nil {
			select {
			case ack := <-d.fut.Ok():
				seq = ack.Sequence
			case err = <-d.fut.Err():
			case <-timeout.C:
				err = context.DeadlineExceeded
				timeout.Reset(0) // the rest have had their time too
			}
		}
		if err != nil {
			divFailed++
			divErr = cmp.Or(divErr, err)
			s.note(d.it, retry(time.Second).because("its dead letter or parked copy was not stored; handed back"), 0)
			if err := s.nakNow(d.it, time.Second, outcomeRetried); err != nil {
				nakFailed++
				nakErr = cmp.Or(nakErr, err)
			}
			continue
		}
		s.note(d.it, d.out, seq)
		if d.out.kind == kindDeadLetter {
			dead.add(cmp.Or(d.it.business, d.it.conv.BusinessID), d.out.reason)
		}
		if err := s.ackNow(d.it, d.label); err != nil {
			ackFailed++
			ackErr = cmp.Or(ackErr, err)
		}
	}
	s.countDeadLetters(dead)
	if divFailed > 0 {
		s.log.Warn("dead letters or parked copies not stored; messages handed back", zap.Int("count", divFailed), zap.Error(divErr))
	}
	if ackFailed > 0 {
		s.log.Warn("ack failed; jetstream redelivers after ack_wait, and the ledger or the copy's msg id keeps it from being sent or stored twice",
			zap.Int("count", ackFailed), zap.Error(ackErr))
	}
	if nakFailed > 0 {
		s.log.Warn("nak failed; jetstream redelivers after ack_wait instead", zap.Int("count", nakFailed), zap.Error(nakErr))
	}
}

// followers returns it's followers and theirs: a primary of one fetch may
// itself follow another copy in its request (dedupe).
func followers(it *item) []*item {
	var out []*item
	for _, f := range it.followers {
		out = append(out, f)
		out = append(out, followers(f)...)
	}
	return out
}

// ackNow acks it, counts it as label and lets the pipeline forget it.
func (s *Service) ackNow(it *item, label string) error {
	err := it.msg.Ack()
	s.m.count(label, it.conv.Channel, 1)
	s.forget(it)
	return err
}

// nakNow hands it back after delay (with jitter), counted as label.
func (s *Service) nakNow(it *item, delay time.Duration, label string) error {
	err := it.msg.NakWithDelay(jitter(delay))
	label = cmp.Or(label, outcomeRetried)
	if label == outcomeWaitingContext {
		// Each look counts as a wait; the conversion counts once, at its first.
		s.m.contextWaits.WithLabelValues(channelLabel(it.conv.Channel)).Inc()
		if it.delivered > 1 {
			s.forget(it)
			return err
		}
	}
	s.m.count(label, it.conv.Channel, 1)
	s.forget(it)
	return err
}

// forget tells the pipeline that it left the sender's hands.
func (s *Service) forget(it *item) {
	if s.pipe != nil {
		s.pipe.forget(it)
	}
}
