package embedstore

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// rawConn is a RESP connection without a client library, to see exactly
// what the store answers a process that knows no password.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

// do sends args as a RESP array and returns the first line of the reply.
func (rc *rawConn) do(args ...string) string {
	rc.t.Helper()
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	if _, err := rc.c.Write([]byte(b.String())); err != nil {
		rc.t.Fatal(err)
	}
	line, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("%s: %v", args[0], err)
	}
	return strings.TrimRight(line, "\r\n")
}

// TestAuthRequired: with a password, every command but AUTH, HELLO and
// QUIT answers NOAUTH until the connection authenticates; a wrong password
// is WRONGPASS; go-redis with the password works (HELLO 2 AUTH, or HELLO 3
// refused and AUTH after it).
func TestAuthRequired(t *testing.T) {
	const pw = "store-test-password-0123456789"
	s, err := Open(Options{Dir: t.TempDir(), Password: pw})
	must(t, err)
	t.Cleanup(func() { s.Close() })

	rc := dialRaw(t, s.Addr())
	for _, cmd := range [][]string{{"PING"}, {"KEYS", "*"}, {"GET", "c:{w:1:2}"}, {"SET", "ctm:ledger:{x}", "sent"},
		{"EVAL", "while true do end", "0"}, {"SCRIPT", "KILL"}, {"MULTI"}} {
		if got := rc.do(cmd...); !strings.HasPrefix(got, "-NOAUTH") {
			t.Errorf("%s before AUTH = %q; want -NOAUTH", cmd[0], got)
		}
	}
	if got := rc.do("HELLO", "2"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Errorf("HELLO 2 without AUTH = %q; want -NOAUTH", got)
	}
	if got := rc.do("AUTH", "wrong"); !strings.HasPrefix(got, "-WRONGPASS") {
		t.Errorf("AUTH wrong = %q; want -WRONGPASS", got)
	}
	if got := rc.do("AUTH", "someone", pw); !strings.HasPrefix(got, "-WRONGPASS") {
		t.Errorf("AUTH someone <password> = %q; want -WRONGPASS", got)
	}
	if got := rc.do("PING"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Errorf("PING after a wrong AUTH = %q; want -NOAUTH", got)
	}
	if got := rc.do("AUTH", pw); got != "+OK" {
		t.Fatalf("AUTH <password> = %q; want +OK", got)
	}
	if got := rc.do("PING"); got != "+PONG" {
		t.Errorf("PING after AUTH = %q; want +PONG", got)
	}

	// Before AUTH a command may not make the store buffer much.
	big := dialRaw(t, s.Addr())
	if _, err := big.c.Write([]byte("*2\r\n$4\r\nAUTH\r\n$536870000\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, _ := big.r.ReadString('\n'); !strings.HasPrefix(line, "-ERR Protocol error") {
		t.Errorf("a 512 MB argument before AUTH: %q; want a protocol error", line)
	}

	ctx := t.Context()
	for _, proto := range []int{2, 3} {
		ok := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: pw, Protocol: proto})
		if err := ok.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Errorf("go-redis (protocol %d) with the password: %v", proto, err)
		}
		ok.Close()
	}
	bad := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer bad.Close()
	if err := bad.Get(ctx, "k").Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("go-redis without the password: %v; want NOAUTH", err)
	}
}

// TestNoPasswordConfigured: without Options.Password the store serves
// every connection (tests), and AUTH says no password is configured.
func TestNoPasswordConfigured(t *testing.T) {
	s, c := openTest(t, Options{Dir: t.TempDir()})
	must(t, c.Ping(t.Context()).Err())
	rc := dialRaw(t, s.Addr())
	if got := rc.do("AUTH", "x"); !strings.HasPrefix(got, "-ERR AUTH <password> called without any password") {
		t.Errorf("AUTH without a password configured = %q", got)
	}
}
