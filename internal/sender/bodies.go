package sender

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bodies too big for a dead letter. A conversion within a few hundred bytes
// of NATS max_payload fits CONVERSIONS but not DLQ or PARKED once their
// headers (reason, error text, subject, ...) are added; publishing it there
// fails every time, and the message would come back every second forever.
// So such a copy keeps all its headers and a truncated body, marked with
// HeaderTruncated, and the whole original goes to the JetStream object
// store bucket DLQ_BODIES under the name in HeaderBodyObject. Redrive and
// unpark publish the whole original back and then delete the object. The
// bucket keeps objects as long as the streams keep messages.
const (
	BucketBodies = "DLQ_BODIES"
	// HeaderTruncated is the size in bytes of the original body, of which
	// the message carries only the first bytes.
	HeaderTruncated = "Ctm-Dlq-Truncated"
	// HeaderBodyObject names the whole original body in BucketBodies.
	HeaderBodyObject = "Ctm-Dlq-Body-Object"

	// payloadMargin is room left under max_payload for what the estimate of
	// the header size might miss.
	payloadMargin = 256
)

// headerSize is the wire size of h as nats.go counts it against max_payload:
// "NATS/1.0\r\n", "Key: value\r\n" per value, "\r\n".
func headerSize(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return n
}

// fit makes m fit the connection's max_payload: when it would not, m's data
// goes whole to BucketBodies as name, and m keeps the first bytes that fit
// with the marker headers.
func fit(ctx context.Context, js jetstream.JetStream, m *nats.Msg, name string) error {
	limit := int(js.Conn().MaxPayload())
	if limit <= 0 || headerSize(m.Header)+len(m.Data) <= limit-payloadMargin {
		return nil
	}
	store, err := bodies(ctx, js)
	if err != nil {
		return err
	}
	if _, err := store.PutBytes(ctx, name, m.Data); err != nil {
		return fmt.Errorf("store the whole body in %s: %w", BucketBodies, err)
	}
	m.Header.Set(HeaderTruncated, strconv.Itoa(len(m.Data)))
	m.Header.Set(HeaderBodyObject, name)
	keep := max(0, min(len(m.Data), limit-payloadMargin-headerSize(m.Header)))
	m.Data = m.Data[:keep:keep]
	return nil
}

// bodies opens BucketBodies, creating it when absent (on file, kept as long
// as the dead letters).
func bodies(ctx context.Context, js jetstream.JetStream) (jetstream.ObjectStore, error) {
	store, err := js.ObjectStore(ctx, BucketBodies)
	if err == nil {
		return store, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("object store %s: %w", BucketBodies, err)
	}
	store, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: BucketBodies, Description: "ctmpipe sender: whole bodies of dead letters and parked messages too big to carry them",
		TTL: streamMaxAge, Storage: jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		store, err = js.ObjectStore(ctx, BucketBodies)
	}
	if err != nil {
		return nil, fmt.Errorf("create object store %s: %w", BucketBodies, err)
	}
	return store, nil
}

// originalData is the whole body of a dead letter or parked message: its
// data, or for a truncated one the object it names.
func originalData(ctx context.Context, js jetstream.JetStream, m jetstream.Msg) ([]byte, error) {
	name := m.Headers().Get(HeaderBodyObject)
	if name == "" {
		return m.Data(), nil
	}
	store, err := bodies(ctx, js)
	if err != nil {
		return nil, err
	}
	b, err := store.GetBytes(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("whole body %s in %s: %w", name, BucketBodies, err)
	}
	return b, nil
}

// dropBody deletes the object of a truncated message once it was published
// back whole. A failure only leaves the object until the bucket's TTL.
func dropBody(ctx context.Context, js jetstream.JetStream, h nats.Header) {
	name := h.Get(HeaderBodyObject)
	if name == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if store, err := bodies(ctx, js); err == nil {
		_ = store.Delete(ctx, name)
	}
}
