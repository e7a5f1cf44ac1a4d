package test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
)

// TestIngestMemoryBeforeAuth is the attack of issue 10 on the real binary:
// 2,000 connections each send the headers of a POST /webhook announcing a
// body at BODY_LIMIT (3 MiB, the default) with a well-formed signature (one
// that matches no secret), and one byte of it, then hold. Ingest must not allocate what they announce:
// its heap, read from its own /metrics, grows by less than 100 MiB while all
// 2,000 are being read, and a valid webhook still gets 200.
func TestIngestMemoryBeforeAuth(t *testing.T) {
	const (
		conns     = 2000
		bodyLimit = 3 << 20
		maxGrowth = 100 << 20
	)
	raiseFileLimit(t, 2*conns+256)
	rs := redistest.Start(t)
	addr, adminAddr := freeAddr(t), freeAddr(t)
	start(t, "ingest", "", []string{
		"INGEST_ADDR=" + addr, "ADMIN_ADDR=" + adminAddr, "REDIS_URL=" + rs.URL(),
		"META_APP_SECRET=" + e2eAppSecret, "META_VERIFY_TOKEN=" + e2eVerifyToken, "ADMIN_TOKEN=" + e2eAdminToken,
		// Long enough that every connection is still held while the heap
		// is read, on a slow machine too: this test is about memory.
		"RESPONSE_DEADLINE=5m", "LOG_LEVEL=warn",
		"BODY_LIMIT=" + strconv.Itoa(bodyLimit), // the default, said out loud
		// The 2,000 stand for clients all over the internet; here they all
		// come from 127.0.0.1, which MAX_CONNECTIONS_PER_ADDRESS (256)
		// would otherwise cap (TestConnectionsPerAddress holds that cap).
		"MAX_CONNECTIONS_PER_ADDRESS=" + strconv.Itoa(2*conns),
	})
	c := ingestClient{t: t, base: "http://" + addr, admin: "http://" + adminAddr}
	waitHTTP(t, c.base+"/readyz", 30*time.Second)
	click := webhookFixture(t, "whatsapp_cloud_text_with_ctwa_referral.json")
	if code := c.post(click, e2eAppSecret); code != 200 {
		t.Fatalf("valid webhook before the attack = %d; want 200", code)
	}
	before := metricValue(t, c, "go_memstats_heap_inuse_bytes")

	head := fmt.Sprintf("POST /webhook HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"X-Hub-Signature-256: sha256=%s\r\nContent-Length: %d\r\n\r\n{", addr, strings.Repeat("0", 64), bodyLimit)
	held := make([]net.Conn, 0, conns)
	t.Cleanup(func() {
		for _, nc := range held {
			nc.Close()
		}
	})
	for range conns {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", len(held), err)
		}
		held = append(held, nc)
		if _, err := nc.Write([]byte(head)); err != nil {
			t.Fatalf("write %d: %v", len(held), err)
		}
	}
	waitFor(t, 2*time.Minute, "ingest to be reading all bodies", func() bool {
		return metricValue(t, c, "ingest_bodies_in_flight") == conns
	})
	after := metricValue(t, c, "go_memstats_heap_inuse_bytes")
	reserved := metricValue(t, c, "ingest_body_bytes_in_flight")
	t.Logf("heap in use %.1f MiB before, %.1f MiB with %d bodies announced at %d bytes (%.1f MiB reserved by their buffers)",
		before/(1<<20), after/(1<<20), conns, bodyLimit, reserved/(1<<20))
	if after-before >= maxGrowth {
		t.Errorf("heap grew by %.1f MiB; want less than %d MiB", (after-before)/(1<<20), maxGrowth>>20)
	}
	if code := c.post(click, e2eAppSecret); code != 200 {
		t.Errorf("valid webhook during the attack = %d; want 200", code)
	}
}

// metricValue reads one unlabelled sample from ingest's admin /metrics.
func metricValue(t *testing.T, c ingestClient, name string) float64 {
	t.Helper()
	code, body := c.adm(http.MethodGet, "/metrics", http.Header{"Authorization": {"Bearer " + e2eAdminToken}})
	if code != 200 {
		t.Fatalf("GET /metrics on the admin listener = %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// raiseFileLimit makes sure this process may hold n descriptors (ingest, a
// child, inherits the limit).
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("RLIMIT_NOFILE hard limit %d < %d descriptors", lim.Max, n)
	}
	old := lim.Cur
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lim.Cur = old
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	})
}
