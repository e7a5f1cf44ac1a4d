package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// headerDeliveryID keeps a redriven body's first Nats-Msg-Id (its own must
// differ, or FORWARD's duplicate window would drop it), so that
// X-Ctm-Delivery-Id stays the same across a redrive.
const headerDeliveryID = "Ctm-Fwd-Delivery-Id"

// maxDrain is how much of a destination's answer is read (and discarded) so
// that its connection can be reused.
const maxDrain = 64 << 10

// newClient is a destination's HTTP client: at most conc connections, no
// redirects (a 301/302 would turn the POST into a GET without the body, and
// its 200 would look like a delivery; a 3xx is retried and shows in the
// dead letter instead).
func newClient(conc int, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:   true,
			MaxConnsPerHost:     conc,
			MaxIdleConnsPerHost: conc,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: timeout,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// post sends m's body to d as Meta sent it. It returns the status (0
// without an answer) and, unless it was 2xx, an error whose text is safe to
// log and to keep in a dead letter: it never holds the URL's path, userinfo
// or query, nor anything of the body.
func post(ctx context.Context, d *dest, m jetstream.Msg, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(m.Data()))
	if err != nil {
		return 0, errors.New("cannot build the request")
	}
	h := m.Headers()
	for _, k := range []string{headerContentType, HeaderSignature, headerSignatureSHA1} {
		if v := h.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	id := h.Get(headerDeliveryID)
	if id == "" {
		id = h.Get(jetstream.MsgIDHeader)
	}
	req.Header.Set(HeaderDeliveryID, id)
	req.Header.Set("User-Agent", "ctmpipe-forward/1")
	resp, err := d.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, fmt.Errorf("no answer within %s", timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // *url.Error's text holds the whole URL
		}
		return 0, fmt.Errorf("post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, fmt.Errorf("http %d", resp.StatusCode)
}
