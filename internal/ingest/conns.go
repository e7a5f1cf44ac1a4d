package ingest

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Connections on the webhook listener. MAX_CONNECTIONS bounds what
// connections cost (goroutines, header buffers), but a slot held by a
// connection that sends nothing is a slot Meta's deliveries wait for:
// 4,300 idle connections made valid webhooks wait 8.9-9.9 s, past the 5 s
// Messenger and Instagram allow. So a slot is held only by a connection
// that is doing something:
//
//   - a new connection must send a request's first byte within
//     FIRST_BYTE_TIMEOUT (2 s), or it is closed (the header's own bound,
//     ReadHeaderTimeout, only starts the clock of a slow request);
//   - one address holds at most MAX_CONNECTIONS_PER_ADDRESS (an IPv6 one
//     by its /64); a connection past it is closed as it is accepted;
//   - while every slot is taken, a connection idle between requests
//     (keep-alive, bounded by the server's IdleTimeout otherwise) is closed
//     to make room: an idle client reconnects when it has something to
//     send, a waiting one cannot.

// connLimit is a listener that holds at most cap(sem) connections open:
// Accept waits for a free slot, and a connection gives its slot back when
// it is closed.
type connLimit struct {
	net.Listener
	sem        chan struct{}
	done       chan struct{}
	idled      chan struct{} // a connection became idle
	closeOnce  sync.Once
	firstByte  time.Duration // 0: no first-byte timeout
	maxPerAddr int           // 0: no limit per address
	closed     func(reason string)

	mu     sync.Mutex
	idle   map[*limitedConn]struct{} // keep-alive connections between requests
	byAddr map[string]int
}

// Reasons the listener closes a connection, as counted.
const (
	closedFirstByte  = "first_byte_timeout"
	closedPerAddress = "per_address"
	closedIdle       = "idle_evicted"
)

// newConnLimit limits ln to n connections; closed (not nil) counts each
// connection the listener closes, by reason.
func newConnLimit(ln net.Listener, n int, firstByte time.Duration, perAddr int, closed func(string)) *connLimit {
	return &connLimit{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{}), idled: make(chan struct{}, 1), firstByte: firstByte,
		maxPerAddr: perAddr, closed: closed, idle: map[*limitedConn]struct{}{}, byAddr: map[string]int{}}
}

// open returns the connections held now.
func (l *connLimit) open() int { return len(l.sem) }

func (l *connLimit) Accept() (net.Conn, error) {
	for {
		if !l.slot() {
			return nil, net.ErrClosed
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.sem
			return nil, err
		}
		addr := addressOf(c.RemoteAddr())
		if !l.take(addr) {
			c.Close()
			<-l.sem
			l.closed(closedPerAddress)
			continue
		}
		return newLimitedConn(c, l, addr), nil
	}
}

// slot takes a slot, closing idle connections to make room while every
// slot is taken (one each time a connection becomes idle); false when the
// listener was closed meanwhile.
func (l *connLimit) slot() bool {
	for {
		l.evictIdle()
		select {
		case l.sem <- struct{}{}:
			return true
		case <-l.idled:
		case <-l.done:
			return false
		}
	}
}

// take counts a connection of addr, unless addr holds its maximum.
func (l *connLimit) take(addr string) bool {
	if l.maxPerAddr <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAddr[addr] >= l.maxPerAddr {
		return false
	}
	l.byAddr[addr]++
	return true
}

// evictIdle closes one connection idle between requests, if any, when
// every slot is taken.
func (l *connLimit) evictIdle() {
	if len(l.sem) < cap(l.sem) {
		return
	}
	l.mu.Lock()
	var victim *limitedConn
	for c := range l.idle {
		victim = c
		delete(l.idle, c)
		break
	}
	l.mu.Unlock()
	if victim != nil {
		victim.Close()
		l.closed(closedIdle)
	}
}

// connState follows http.Server's connection states (its ConnState hook):
// only a connection waiting between requests may be evicted.
func (l *connLimit) connState(c net.Conn, st http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	if st == http.StateIdle {
		l.idle[lc] = struct{}{}
	} else {
		delete(l.idle, lc)
	}
	l.mu.Unlock()
	if st == http.StateIdle {
		select {
		case l.idled <- struct{}{}: // Accept, waiting for a slot, may evict it
		default:
		}
	}
}

func (l *connLimit) release(c *limitedConn) {
	l.mu.Lock()
	delete(l.idle, c)
	if l.maxPerAddr > 0 {
		if n := l.byAddr[c.addr] - 1; n > 0 {
			l.byAddr[c.addr] = n
		} else {
			delete(l.byAddr, c.addr)
		}
	}
	l.mu.Unlock()
	<-l.sem
}

func (l *connLimit) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// limitedConn gives its slot back on the first Close. Until its first byte
// arrives, its read deadline is at most FIRST_BYTE_TIMEOUT after accept,
// whatever deadline the server sets (ReadHeaderTimeout would be 10 s): the
// server's own read then fails and it closes the connection, with no
// timer or goroutine per connection.
type limitedConn struct {
	net.Conn
	l       *connLimit
	addr    string
	started atomic.Bool // the first byte arrived (or no first-byte timeout)
	once    sync.Once

	mu      sync.Mutex
	firstBy time.Time // the first byte's deadline
	wanted  time.Time // the read deadline the server asked for
}

func newLimitedConn(c net.Conn, l *connLimit, addr string) *limitedConn {
	lc := &limitedConn{Conn: c, l: l, addr: addr}
	if l.firstByte <= 0 {
		lc.started.Store(true)
		return lc
	}
	lc.firstBy = time.Now().Add(l.firstByte)
	_ = c.SetReadDeadline(lc.firstBy)
	return lc
}

func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.started.Load() {
		return n, err
	}
	if n > 0 {
		c.mu.Lock()
		c.started.Store(true)
		_ = c.Conn.SetReadDeadline(c.wanted)
		c.mu.Unlock()
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() && !time.Now().Before(c.firstBy) {
		c.l.closed(closedFirstByte) // the server closes it on this error
	}
	return n, err
}

func (c *limitedConn) SetReadDeadline(t time.Time) error {
	if c.started.Load() {
		return c.Conn.SetReadDeadline(t)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wanted = t
	if !c.started.Load() && (t.IsZero() || t.After(c.firstBy)) {
		t = c.firstBy
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *limitedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}

// addressOf is the address connections are counted by: the peer's IP, an
// IPv6 one by its /64 (one host holds a whole /64), as the guards count.
func addressOf(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return ta.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
