package admin

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
)

// The limits of failed authentications per client address on the admin
// listener: after GuardMaxFailures answers 401 within GuardWindow, that
// address's credentials are refused (429) until the window ends. A token
// cannot then be guessed faster than GuardMaxFailures a minute from one
// address, while an operator who mistyped it waits a minute at most.
const (
	GuardMaxFailures = 10
	GuardWindow      = time.Minute
	// guardMaxClients bounds the addresses tracked. Past it, windows that
	// ended are dropped; a new address beyond it is not tracked (counting
	// it would need memory an attacker controls).
	guardMaxClients = 10000
)

// guard counts failed authentications (answers 401 to a request that
// carried credentials) per client address and
// refuses, with 429 and Retry-After, the credentials of an address past
// GuardMaxFailures in its window: requests carrying an Authorization header
// and console logins. Requests without credentials pass (a console session
// cookie cannot be guessed, and anything else answers 401 on its own), so
// a blocked address cannot lock a logged-in operator out.
//
// The address is the TCP peer's (RemoteAddr), never X-Forwarded-For,
// which any client sets as it likes; behind a proxy every client shares the
// proxy's address, so the proxy should limit on its own.
type guard struct {
	log *zap.Logger
	now func() time.Time

	mu      sync.Mutex
	clients map[string]*strikes
}

type strikes struct {
	n     int
	since time.Time // the window's start: the first failure
}

func newGuard(log *zap.Logger, now func() time.Time) *guard {
	if now == nil {
		now = time.Now
	}
	return &guard{log: log, now: now, clients: map[string]*strikes{}}
}

// blocked returns how long client must wait before its credentials are
// checked again; 0 when they are checked now.
func (g *guard) blocked(client string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.clients[client]
	if s == nil {
		return 0
	}
	left := s.since.Add(GuardWindow).Sub(g.now())
	if left <= 0 {
		delete(g.clients, client)
		return 0
	}
	if s.n < GuardMaxFailures {
		return 0
	}
	return left
}

// failed counts one failed authentication of client.
func (g *guard) failed(client string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	s := g.clients[client]
	if s != nil && now.Sub(s.since) >= GuardWindow {
		s = nil
	}
	if s == nil {
		if len(g.clients) >= guardMaxClients {
			for k, v := range g.clients {
				if now.Sub(v.since) >= GuardWindow {
					delete(g.clients, k)
				}
			}
			if len(g.clients) >= guardMaxClients {
				return
			}
		}
		s = &strikes{since: now}
		g.clients[client] = s
	}
	s.n++
	if s.n == GuardMaxFailures {
		g.log.Warn("too many failed authentications on the admin listener: this address's tokens are refused until its window ends",
			zap.String("client", client), zap.Int("failures", s.n), zap.Duration("window", GuardWindow))
	}
}

// errTooManyFailures answers the credentials of a blocked address.
func errTooManyFailures(wait time.Duration) *Error {
	return &Error{Status: http.StatusTooManyRequests,
		Message: "too many failed authentications from this address: try again in " + strconv.Itoa(int(wait.Round(time.Second)/time.Second)) + "s"}
}

// middleware refuses the credentials of a blocked address and counts every
// 401 answered to credentials (a request without any is not a guess).
func (g *guard) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if !carriesCredentials(r) {
			return next(c) // nothing to guess with: its own check answers
		}
		client := clientOf(r)
		if wait := g.blocked(client); wait > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
			return errTooManyFailures(wait)
		}
		if err := next(c); err != nil {
			c.Error(err) // written now, so that its status is known here
		}
		if c.Response().Status == http.StatusUnauthorized {
			g.failed(client)
		}
		return nil
	}
}

// carriesCredentials reports whether r presents a token: an Authorization
// header or the console's login form.
func carriesCredentials(r *http.Request) bool {
	return r.Header.Get("Authorization") != "" ||
		r.Method == http.MethodPost && r.URL.Path == "/console/login"
}

// clientOf is the address r's failures count against: the TCP peer's IP.
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
