package ingest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// serveOn serves e's webhook listener on a loopback port until the test
// ends and returns its address.
func serveOn(t *testing.T, e *testEnv) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })
	return ln.Addr().String()
}

// dialFrom connects to addr from the loopback address local (any of
// 127.0.0.0/8 is this host on Linux).
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	c, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	return c
}

// clientFrom is an HTTP client whose connections come from local.
func clientFrom(local string, timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// raiseFileLimit makes room for n descriptors or skips the test.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("RLIMIT_NOFILE hard limit %d is below the %d descriptors the test needs", lim.Max, n)
	}
	old := lim
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// TestIdleConnectionsDoNotDelayWebhooks: 5,000 connections that send
// nothing, from 20 addresses (each under MAX_CONNECTIONS_PER_ADDRESS, so
// only FIRST_BYTE_TIMEOUT helps), fill the 4,096 slots and the kernel's
// queue; a signed webhook from another address is still answered 200
// within 3 s, inside Meta's 5 (before, the slots were held until the 10 s
// header timeout).
func TestIdleConnectionsDoNotDelayWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 5,000 connections")
	}
	const idle, sources = 5000, 20
	// Both ends of every connection are in this process.
	raiseFileLimit(t, 2*idle+1000)
	e := newTestEnv(t, nil, nil) // the defaults: 4,096 slots, 256 per address, 2 s to the first byte
	addr := serveOn(t, e)
	for i := range idle {
		c := dialFrom(t, "127.0.0."+strconv.Itoa(10+i%sources), addr)
		t.Cleanup(func() { c.Close() })
	}
	body := fixture(t, "whatsapp_cloud_batched_two_messages.json")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, []byte(testAppSecret)))
	start := time.Now()
	resp, err := clientFrom("127.0.0.2", 3*time.Second).Do(req)
	if err != nil {
		t.Fatalf("webhook behind %d idle connections: %v after %v; want an answer within 3s", idle, err, time.Since(start))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook behind %d idle connections = %d; want 200", idle, resp.StatusCode)
	}
	t.Logf("answered in %v", time.Since(start))
	if n := testutil.ToFloat64(e.srv.m.connsClosed.WithLabelValues(closedFirstByte)); n == 0 {
		t.Error("no connection closed for FIRST_BYTE_TIMEOUT")
	}
}

// TestConnectionsPerAddress: past MAX_CONNECTIONS_PER_ADDRESS, a
// connection from that address is closed as it is accepted; another
// address is served.
func TestConnectionsPerAddress(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConnectionsPerAddress = 2
	e := newTestEnv(t, &cfg, nil)
	addr := serveOn(t, e)
	held := []net.Conn{dialFrom(t, "127.0.0.3", addr), dialFrom(t, "127.0.0.3", addr)}
	for _, c := range held {
		defer c.Close()
		io.WriteString(c, "GET /healthz HTTP/1.1\r\n") // a request under way
	}
	third := dialFrom(t, "127.0.0.3", addr)
	defer third.Close()
	third.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := third.Read(make([]byte, 1)); err == nil || n > 0 {
		t.Fatalf("third connection from one address: read %d, %v; want it closed", n, err)
	}
	if n := testutil.ToFloat64(e.srv.m.connsClosed.WithLabelValues(closedPerAddress)); n != 1 {
		t.Errorf("connections closed per_address = %v; want 1", n)
	}
	resp, err := clientFrom("127.0.0.4", 10*time.Second).Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("another address: %v %v; want 200", resp, err)
	}
	resp.Body.Close()
}

// TestIdleConnectionsMakeRoom: while every slot is taken, a connection
// idle between requests (keep-alive) is closed so that a new one is
// served, instead of waiting for the 2-minute idle timeout.
func TestIdleConnectionsMakeRoom(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConnections = 1
	e := newTestEnv(t, &cfg, nil)
	addr := serveOn(t, e)
	a := dialFrom(t, "127.0.0.5", addr)
	defer a.Close()
	io.WriteString(a, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(a)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first connection: %v %v", resp, err)
	}
	resp.Body.Close()
	// a now idles with keep-alive, holding the only slot.
	resp, err = clientFrom("127.0.0.6", 10*time.Second).Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("new connection while an idle one holds the only slot: %v %v; want 200", resp, err)
	}
	resp.Body.Close()
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Error("the idle connection is still open")
	}
	if n := testutil.ToFloat64(e.srv.m.connsClosed.WithLabelValues(closedIdle)); n != 1 {
		t.Errorf("connections closed idle_evicted = %v; want 1", n)
	}
}
