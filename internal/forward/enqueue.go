package forward

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrEnqueue wraps every failure to store a body for forwarding: JetStream
// unreachable, slow past the context's deadline, or refusing the publish.
// Ingest answers 503 to it, and Meta retries.
var ErrEnqueue = errors.New("forward: body not stored")

// ErrUnsigned is returned for a body without X-Hub-Signature-256: its
// destinations could never verify it. It is a caller's bug (only verified
// /webhook deliveries are forwarded), so it does not wrap ErrEnqueue.
var ErrUnsigned = errors.New("forward: no " + HeaderSignature + " header")

// ErrTooLarge is returned for a body that NATS could store but not also
// dead-letter: with the dead letter's headers it would pass the server's
// max_payload. Raise max_payload or lower BODY_LIMIT (docs/forwarding.md).
var ErrTooLarge = errors.New("forward: body too large for NATS max_payload with a dead letter's headers")

// deadLetterReserve is the room kept under max_payload for a dead letter's
// headers (the error text alone may take outbound.MaxHeaderValue).
const deadLetterReserve = 4 << 10

// Enqueuer stores verified webhook bodies in stream FORWARD. It is safe for
// concurrent use.
type Enqueuer struct {
	js    jetstream.JetStream
	cfg   Config
	dests []destination

	lock  chan struct{} // holds one token while setup runs
	ready atomic.Bool   // FORWARD and every destination's consumer exist
}

// NewEnqueuer returns an Enqueuer publishing with js. It does no I/O: the
// stream and the destinations' consumers are created by the first Enqueue
// that reaches NATS, so ingest starts while NATS is away (and answers 503
// until it is back).
func NewEnqueuer(js jetstream.JetStream, cfg Config) (*Enqueuer, error) {
	cfg.setDefaults()
	dests, err := parseDestinations(cfg.URLs)
	if err != nil {
		return nil, err
	}
	if len(dests) == 0 {
		return nil, errors.New("forward: no FORWARD_URLS")
	}
	return &Enqueuer{js: js, cfg: cfg, dests: dests, lock: make(chan struct{}, 1)}, nil
}

// Enqueue stores body, with header's Content-Type and signatures, in stream
// FORWARD and returns once JetStream has acknowledged it (a synchronous
// publish), or an error wrapping ErrEnqueue when it could not within ctx.
// Answer Meta 200 only after it returns nil. The Nats-Msg-Id is the hex
// SHA-256 of the signature header and the body, so the same bytes
// redelivered by Meta within DupWindow are stored once. body is not kept
// after Enqueue returns.
func (e *Enqueuer) Enqueue(ctx context.Context, body []byte, header http.Header) error {
	sig := header.Get(HeaderSignature)
	if sig == "" {
		return ErrUnsigned
	}
	if mp := e.js.Conn().MaxPayload(); mp > 0 && int64(len(body))+deadLetterReserve > mp {
		return ErrTooLarge
	}
	if err := e.setup(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrEnqueue, err)
	}
	m := nats.NewMsg(SubjectAll)
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, msgID(sig, body))
	m.Header.Set(HeaderSignature, sig)
	if v := header.Get(headerSignatureSHA1); v != "" {
		m.Header.Set(headerSignatureSHA1, v)
	}
	if v := header.Get(headerContentType); v != "" {
		m.Header.Set(headerContentType, v)
	}
	if _, err := e.js.PublishMsg(ctx, m, jetstream.WithExpectStream(StreamForward)); err != nil {
		// Set up again next time: the stream may be gone (a NATS that
		// lost its store), and setup is idempotent.
		e.ready.Store(false)
		return fmt.Errorf("%w: publish: %w", ErrEnqueue, err)
	}
	return nil
}

// setup creates FORWARD and the consumers once. Every consumer must exist
// before the first body is published: the stream keeps a body only for
// consumers that exist when it arrives. Waiting for another caller's setup
// is bounded by ctx too, so requests never queue behind a NATS outage.
func (e *Enqueuer) setup(ctx context.Context) error {
	if e.ready.Load() {
		return nil
	}
	select {
	case e.lock <- struct{}{}:
		defer func() { <-e.lock }()
	case <-ctx.Done():
		return ctx.Err()
	}
	if e.ready.Load() {
		return nil
	}
	if err := ensureStream(ctx, e.js, forwardStream(e.cfg.MaxAge, e.cfg.Replicas), true, nil); err != nil {
		return err
	}
	for _, d := range e.dests {
		if _, err := ensureConsumer(ctx, e.js, d, e.cfg.Timeout); err != nil {
			return err
		}
	}
	e.ready.Store(true)
	return nil
}

// msgID is the Nats-Msg-Id of a body: hex SHA-256 of the signature header,
// a newline, and the body.
func msgID(sig string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(sig))
	h.Write([]byte{'\n'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}
