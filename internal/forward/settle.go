package forward

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/outbound"
)

// handle makes one attempt to deliver m to d and settles m. This is the
// one place that decides a body's fate for a destination:
//   - 2xx: Ack. Delivered; a lost ack means one more delivery (at least once).
//   - failed, younger than FORWARD_MAX_AGE: NakWithDelay by the backoff,
//     never past the deadline, so the last attempt is made at it.
//   - failed at or past FORWARD_MAX_AGE: dead letter on dlq.forward, then
//     Ack. Should the dead letter not be stored, Nak: it is tried again.
//
// Ack and Nak are fire-and-forget: one lost is a redelivery after AckWait.
func (f *Forwarder) handle(ctx context.Context, d *dest, m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil { // not a JetStream message: cannot happen on a consumer
		f.log.Error("forward message without metadata", zap.String("host", d.host), zap.Error(err))
		_ = m.Term()
		return
	}
	attempt := int(md.NumDelivered)
	status, err := post(ctx, d, m, f.cfg.Timeout)
	now := f.Now()
	if err == nil {
		_ = m.Ack()
		f.m.deliveries.WithLabelValues(d.label, outcomeDelivered).Inc()
		f.m.latency.WithLabelValues(d.label).Observe(now.Sub(md.Timestamp).Seconds())
		if d.failing.CompareAndSwap(true, false) {
			f.log.Info("forward destination recovered", zap.String("host", d.host), zap.Int("status_code", status), zap.Int("attempt", attempt))
		}
		return
	}
	age := now.Sub(md.Timestamp)
	fields := []zap.Field{zap.String("host", d.host), zap.Int("status_code", status), zap.Int("attempt", attempt), zap.String("error", err.Error())}
	if age >= f.cfg.MaxAge {
		f.deadLetter(ctx, d, m, md, attempt, err.Error(), fields)
		return
	}
	_ = m.NakWithDelay(min(f.backoff.Delay(attempt), f.cfg.MaxAge-age))
	f.m.deliveries.WithLabelValues(d.label, outcomeRetried).Inc()
	if d.failing.CompareAndSwap(false, true) {
		f.log.Warn("forward destination failing; retrying with backoff", fields...)
	} else {
		f.log.Debug("forward attempt failed", fields...)
	}
}

// deadLetter stores m on dlq.forward and acks it. Its Nats-Msg-Id is the
// FORWARD sequence and the destination, so a dead letter stored twice
// (its ack lost) is dropped by DLQ's duplicate window.
func (f *Forwarder) deadLetter(ctx context.Context, d *dest, m jetstream.Msg, md *jetstream.MsgMetadata, attempt int, text string, fields []zap.Field) {
	dl := nats.NewMsg(SubjectDeadLetter)
	dl.Data = m.Data()
	h := m.Headers()
	for _, k := range []string{headerContentType, HeaderSignature, headerSignatureSHA1} {
		if v := h.Get(k); v != "" {
			dl.Header.Set(k, v)
		}
	}
	id := h.Get(headerDeliveryID)
	if id == "" {
		id = h.Get(jetstream.MsgIDHeader)
	}
	dl.Header.Set(jetstream.MsgIDHeader, strconv.FormatUint(md.Sequence.Stream, 10)+"-forward-"+d.id)
	dl.Header.Set(headerReason, ReasonForward)
	dl.Header.Set(headerError, outbound.HeaderValue(text))
	dl.Header.Set(headerSubject, d.subject())
	dl.Header.Set(headerTime, f.Now().UTC().Format(time.RFC3339))
	dl.Header.Set(headerPublished, md.Timestamp.UTC().Format(time.RFC3339Nano))
	dl.Header.Set(headerMsgID, id)
	dl.Header.Set(HeaderHost, d.host)
	dl.Header.Set(HeaderDestination, d.id)
	dl.Header.Set(HeaderAttempts, strconv.Itoa(attempt))
	pctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	if _, err := f.js.PublishMsg(pctx, dl, jetstream.WithExpectStream(streamDLQ)); err != nil {
		f.log.Error("forward dead letter not stored; trying again", append(fields, zap.NamedError("dlq_error", err))...)
		_ = m.NakWithDelay(f.cfg.RetryMin)
		return
	}
	_ = m.Ack()
	f.m.deliveries.WithLabelValues(d.label, outcomeDead).Inc()
	f.log.Warn("forward undelivered after FORWARD_MAX_AGE; dead letter on "+SubjectDeadLetter, fields...)
}

// poll sets d's pending and lag gauges from its consumer until ctx is done.
func (f *Forwarder) poll(ctx context.Context, d *dest, cons jetstream.Consumer) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		f.observe(ctx, d, cons)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (f *Forwarder) observe(ctx context.Context, d *dest, cons jetstream.Consumer) {
	ctx, cancel := context.WithTimeout(ctx, pollEvery)
	defer cancel()
	info, err := cons.Info(ctx)
	if err != nil {
		return // NATS away: the gauges keep their last values
	}
	pending := info.NumPending + uint64(info.NumAckPending)
	f.m.pending.WithLabelValues(d.label).Set(float64(pending))
	if pending == 0 {
		f.m.lag.WithLabelValues(d.label).Set(0)
		return
	}
	// The first body after the ack floor is at least as old as the oldest
	// one d has not acked.
	s, err := f.js.Stream(ctx, StreamForward)
	if err != nil {
		return
	}
	raw, err := s.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject("forward.>"))
	if err != nil {
		return
	}
	f.m.lag.WithLabelValues(d.label).Set(max(0, f.Now().Sub(raw.Time).Seconds()))
}
