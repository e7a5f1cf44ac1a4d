package intake

import (
	"context"
	"errors"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/tracing"
	"github.com/ctmpipe/ctmpipe/pkg/conversion"
)

// The JetStream names of the contract (docs/contract.md). They equal
// internal/sender's StreamConversions and SubjectConversions; a test keeps
// them so, since the intake must not depend on the sender.
const (
	streamConversions = "CONVERSIONS"
	subjectPrefix     = "conversions."
)

// publisher is the part of jetstream.JetStream the intake uses.
type publisher interface {
	Conn() *nats.Conn
	PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// item is a valid conversion: the bytes to publish and where they go.
type item struct {
	data             []byte
	channel, eventID string
}

// check parses every item with pkg/conversion, the sender's own check, and
// returns the valid ones and a Result naming the others.
func check(items [][]byte) ([]item, Result) {
	valid := make([]item, 0, len(items))
	res := Result{Invalid: []Invalid{}}
	for i, data := range items {
		c, err := conversion.Parse(data)
		if err != nil {
			inv := Invalid{Index: i, Reason: err.Error()}
			if len(c.EventID) <= conversion.MaxEventIDLen {
				inv.EventID = c.EventID
			}
			res.Invalid = append(res.Invalid, inv)
			continue
		}
		valid = append(valid, item{data: data, channel: c.Channel, eventID: c.EventID})
	}
	return valid, res
}

// publish publishes every item asynchronously, then waits for each ack
// within ctx, counting accepted and duplicates into res. It succeeds only
// when JetStream acked every item; otherwise nothing tells which items were
// stored, and the client's retry of the whole body sorts it out: JetStream
// drops a Nats-Msg-Id it saw within the stream's duplicate window, and the
// sender's ledger drops a conversion already sent after it.
func (h *Handler) publish(ctx context.Context, items []item, res *Result) error {
	futures := make([]jetstream.PubAckFuture, 0, len(items))
	var pubErr error
	for _, it := range items {
		// A publish while NATS is away would wait in the client's reconnect
		// buffer, past the answer; stop and answer 503 instead.
		if st := h.pub.Conn().Status(); st != nats.CONNECTED {
			pubErr = errors.New("nats " + st.String())
			break
		}
		m := &nats.Msg{Subject: subjectPrefix + it.channel, Data: it.data}
		tracing.Inject(ctx, m) // the request's span, when tracing is on
		f, err := h.pub.PublishMsgAsync(m, jetstream.WithMsgID(it.eventID), jetstream.WithExpectStream(streamConversions))
		if err != nil {
			pubErr = err
			break
		}
		futures = append(futures, f)
	}
	// Wait for the acks of what was published even when the loop stopped,
	// so that the error reported is the first cause, not a timeout.
	var ackErr error
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				res.Duplicates++
			} else {
				res.Accepted++
			}
		case err := <-f.Err():
			if ackErr == nil {
				ackErr = err
			}
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return unavailable("request canceled before NATS acked every conversion", ctx.Err())
			}
			return unavailable("NATS did not ack every conversion within INTAKE_ACK_TIMEOUT", ctx.Err())
		}
	}
	if err := errors.Join(ackErr, pubErr); err != nil {
		return publishError(err)
	}
	return nil
}

// publishError maps a failed publish to its answer.
func publishError(err error) *answer {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse):
		return unavailable("no JetStream stream takes conversions.>: the sender creates stream "+streamConversions+
			" when it starts and has not yet (or JetStream is off)", err)
	case errors.As(err, &apiErr) && apiErr.Code != http.StatusServiceUnavailable:
		// A stream other than CONVERSIONS holds the subject (the publish
		// expects CONVERSIONS), or the stream refuses the message for good:
		// an operator must act, a retry would not help. JetStream's 503s
		// (no leader yet, store full) are worth a retry.
		return &answer{status: http.StatusInternalServerError, msg: "JetStream refused the conversions (see the log)", cause: err}
	}
	return unavailable("NATS unavailable", err)
}
