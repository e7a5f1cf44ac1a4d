package capi

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Over TLS the client speaks HTTP/2 (as graph.facebook.com offers it), and
// many concurrent requests share one connection as streams.
func TestSendHTTP2OverTLS(t *testing.T) {
	var dials, h2 atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			h2.Add(1)
		}
		io.Copy(io.Discard, r.Body)
		time.Sleep(20 * time.Millisecond) // keep requests overlapping
		io.WriteString(w, `{"events_received":1,"fbtrace_id":"x"}`)
	}))
	srv.EnableHTTP2 = true
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tr := newTransport()
	// Trust the test server's certificate; everything else is the client's own.
	tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	c := NewClient(Config{BaseURL: srv.URL, HTTPClient: &http.Client{Timeout: 5 * time.Second, Transport: tr}})
	// One request first, so that the rest find its connection.
	if _, err := c.Send(t.Context(), "123", "token", []Event{channelEvents["whatsapp"]}); err != nil {
		t.Fatal(err)
	}
	const concurrent = 32
	var wg sync.WaitGroup
	for range concurrent {
		wg.Go(func() {
			if _, err := c.Send(t.Context(), "123", "token", []Event{channelEvents["whatsapp"]}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := h2.Load(); n != concurrent+1 {
		t.Errorf("%d of %d requests over HTTP/2", n, concurrent+1)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connections for %d concurrent requests; want 1 (HTTP/2 streams)", n, concurrent)
	}
}

func TestTransportBoundsIdle(t *testing.T) {
	tr := newTransport()
	if !tr.ForceAttemptHTTP2 || tr.MaxIdleConnsPerHost != MaxIdleConnsPerHost || tr.IdleConnTimeout != IdleConnTimeout ||
		tr.HTTP2 == nil || tr.HTTP2.SendPingTimeout <= 0 {
		t.Errorf("transport: http2 %v, idle per host %d, idle timeout %v, http2 config %+v",
			tr.ForceAttemptHTTP2, tr.MaxIdleConnsPerHost, tr.IdleConnTimeout, tr.HTTP2)
	}
}
