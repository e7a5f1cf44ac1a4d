package forward

import (
	"context"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/outbound"
)

// headerDeliveryID keeps a redriven body's first Nats-Msg-Id (its own must
// differ, or FORWARD's duplicate window would drop it), so that
// X-Ctm-Delivery-Id stays the same across a redrive.
const headerDeliveryID = "Ctm-Fwd-Delivery-Id"

// post sends m's body to d as Meta sent it. It returns the status (0
// without an answer) and, unless it was 2xx, an error whose text is safe to
// log and to keep in a dead letter: it never holds the URL's path, userinfo
// or query, nor anything of the body.
func post(ctx context.Context, d *dest, m jetstream.Msg, timeout time.Duration) (int, error) {
	hdr := http.Header{}
	h := m.Headers()
	for _, k := range []string{headerContentType, HeaderSignature, headerSignatureSHA1} {
		if v := h.Get(k); v != "" {
			hdr.Set(k, v)
		}
	}
	id := h.Get(headerDeliveryID)
	if id == "" {
		id = h.Get(jetstream.MsgIDHeader)
	}
	hdr.Set(HeaderDeliveryID, id)
	hdr.Set("User-Agent", "ctmpipe-forward/1")
	return outbound.Post(ctx, d.client, d.url, m.Data(), hdr, timeout)
}
