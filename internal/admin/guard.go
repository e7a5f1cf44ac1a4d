package admin

import (
	"context"
	"crypto/sha256"
	"hash/maphash"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
)

// The limits of failed authentications per client address and realm on the
// admin listener: after GuardMaxFailures wrong tokens within GuardWindow,
// that address's tokens of that realm are not checked (429) until the
// window ends. A token cannot then be guessed faster than GuardMaxFailures
// a minute from one address, while an operator who mistyped it waits a
// minute at most.
const (
	GuardMaxFailures = 10
	GuardWindow      = time.Minute
	// guardMaxClients bounds the addresses tracked in full (their distinct
	// wrong tokens). Past it, windows that ended are swept (at most once a
	// second); a new address beyond it is tracked in the overflow tier.
	guardMaxClients = 10000
	// guardMaxOverflow bounds the overflow tier: addresses counted by a
	// 64-bit digest and a count (every wrong token counts there, a few
	// bytes each), all sharing one window. An address is refused only for
	// its own wrong tokens, never for its neighbours' in the tier: a
	// shared entry would let anyone with 10,000 addresses lock the right
	// token out everywhere. Past both tables the addresses of an attack
	// that large are not counted (a right token is never refused for them
	// either); a WARN says so once a window.
	guardMaxOverflow = 100000
)

// The realms of Check: their tokens are counted apart, so that an order
// system with a stale INTAKE_TOKEN does not lock operators out of the
// admin API from the same address, nor the other way round.
const (
	RealmAdmin  = "admin"  // ADMIN_TOKEN: the admin API, /metrics, the console's login
	RealmIntake = "intake" // INTAKE_TOKEN: POST /v1/conversions
	RealmOnPrem = "onprem" // ONPREM_SECRET: POST /webhook/onprem on the webhook listener
)

// Guard counts wrong tokens per client address and realm, each distinct
// one once (the same stale token retried is no new guess). The count is
// taken at the comparison, under its lock (Check), not around the request:
// concurrent guesses from one address are checked one after the other and
// the eleventh is refused, however many were sent at once.
//
// The address is the TCP peer's (RemoteAddr; an IPv6 address by its /64),
// never X-Forwarded-For, which any client sets as it likes; behind a proxy
// every client shares the proxy's address, so the proxy should limit on its
// own.
//
// The admin listener has one (New); the webhook listener has its own for
// ONPREM_SECRET (internal/ingest).
type Guard struct {
	log *zap.Logger
	now func() time.Time

	mu      sync.Mutex
	clients map[string]*strikes // realm + " " + address
	swept   time.Time
	// The overflow tier: addresses beyond guardMaxClients, by digest.
	seed      maphash.Seed
	over      map[uint64]uint8
	overSince time.Time // the tier's one window
	overWarn  bool      // the tier's full WARN was logged in this window
}

type strikes struct {
	n     int
	since time.Time // the window's start: the first failure
	// seen are the wrong tokens of the window (a digest's first half): the
	// same one again is answered 401 but no new guess, so that one client
	// retrying a stale token does not block everyone behind its address.
	seen [GuardMaxFailures][16]byte
}

// NewGuard returns an empty Guard; now is its clock (time.Now when nil).
func NewGuard(log *zap.Logger, now func() time.Time) *Guard {
	if now == nil {
		now = time.Now
	}
	return &Guard{log: log, now: now, clients: map[string]*strikes{}, seed: maphash.MakeSeed(), over: map[uint64]uint8{}}
}

// check calls compare unless key is blocked, counting a false answer for
// a token (presented) not tried before in the window. It returns whether
// compare accepted, or how long key must wait. When the table is full, a
// new key is counted in the overflow tier (checkOverflow).
func (g *Guard) check(realm, client, presented string, compare func() bool) (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	key := realm + " " + client
	s := g.live(key, now)
	if s == nil && !g.room(now) {
		return g.checkOverflow(realm, client, compare, now)
	}
	if s != nil && s.n >= GuardMaxFailures {
		return false, s.since.Add(GuardWindow).Sub(now)
	}
	if compare() {
		return true, 0
	}
	var d [16]byte
	sum := sha256.Sum256([]byte(presented))
	copy(d[:], sum[:16])
	if s == nil {
		s = &strikes{since: now}
		g.clients[key] = s
	}
	for _, x := range s.seen[:s.n] {
		if x == d {
			return false, 0 // the same wrong token again: no new guess
		}
	}
	s.seen[s.n] = d
	s.n++
	if s.n == GuardMaxFailures {
		g.log.Warn("too many wrong tokens: this address's tokens of the realm are refused until its window ends",
			zap.String("realm", realm), zap.String("client", client), zap.Int("failures", s.n), zap.Duration("window", GuardWindow))
	}
	return false, 0
}

// checkOverflow is check for an address the full table has no room for:
// it waits only when it sent GuardMaxFailures wrong tokens itself. Under
// g.mu.
func (g *Guard) checkOverflow(realm, client string, compare func() bool, now time.Time) (bool, time.Duration) {
	if now.Sub(g.overSince) >= GuardWindow {
		clear(g.over)
		g.overSince, g.overWarn = now, false
	}
	d := maphash.String(g.seed, realm+" "+client)
	n, tracked := g.over[d]
	if n >= GuardMaxFailures {
		return false, g.overSince.Add(GuardWindow).Sub(now)
	}
	if compare() {
		return true, 0
	}
	switch {
	case tracked || len(g.over) < guardMaxOverflow:
		g.over[d] = n + 1
		if n+1 == GuardMaxFailures {
			g.log.Warn("too many wrong tokens: this address's tokens of the realm are refused until its window ends",
				zap.String("realm", realm), zap.String("client", client), zap.Int("failures", GuardMaxFailures),
				zap.Duration("window", GuardWindow), zap.Bool("overflow", true))
		}
	case !g.overWarn:
		g.overWarn = true
		g.log.Warn("wrong tokens from more addresses than the guard tracks: those beyond it are not limited until the window ends",
			zap.String("realm", realm), zap.Int("tracked", guardMaxClients+guardMaxOverflow), zap.Duration("window", GuardWindow))
	}
	return false, 0
}

// live returns key's strikes of a window that has not ended.
func (g *Guard) live(key string, now time.Time) *strikes {
	s := g.clients[key]
	if s != nil && now.Sub(s.since) >= GuardWindow {
		delete(g.clients, key)
		return nil
	}
	return s
}

// room reports whether another address may be tracked, sweeping windows
// that ended when the table is full (at most once a second). Under g.mu.
func (g *Guard) room(now time.Time) bool {
	if len(g.clients) < guardMaxClients {
		return true
	}
	if now.Sub(g.swept) >= time.Second {
		g.swept = now
		for k, v := range g.clients {
			if now.Sub(v.since) >= GuardWindow {
				delete(g.clients, k)
			}
		}
	}
	return len(g.clients) < guardMaxClients
}

// Blocked is Check's answer while an address must wait: 429.
type Blocked struct{ Wait time.Duration }

func (b *Blocked) Error() string { return b.PublicMessage() }

// HTTPStatus is 429.
func (b *Blocked) HTTPStatus() int { return http.StatusTooManyRequests }

// PublicMessage says how long to wait.
func (b *Blocked) PublicMessage() string {
	return "too many wrong tokens from this address: try again in " + b.RetryAfter() + "s"
}

// RetryAfter is the wait in whole seconds, rounded up: the Retry-After value.
func (b *Blocked) RetryAfter() string {
	return strconv.Itoa(int((b.Wait + time.Second - 1) / time.Second))
}

type guardKey struct{}

type guarded struct {
	g      *Guard
	client string
}

type inProcessKey struct{}

// InProcess marks ctx as a request the process makes to its own admin
// listener's handler (the console's API calls): Check then only compares,
// since such a request carries the process's own token and no client's
// address.
func InProcess(ctx context.Context) context.Context {
	return context.WithValue(ctx, inProcessKey{}, true)
}

// Check reports whether compare accepts presented, r's token. When r came
// through the admin listener (its guard is in r's context), a wrong token
// not tried before in the window counts against r's address in realm:
// while that address is blocked, compare is not called and the error is a
// *Blocked (answer 429 with Retry-After: SetRetryAfter). Elsewhere (tests,
// in-process requests) it just compares.
func Check(r *http.Request, realm, presented string, compare func() bool) (bool, error) {
	gd, _ := r.Context().Value(guardKey{}).(guarded)
	if in, _ := r.Context().Value(inProcessKey{}).(bool); gd.g == nil || in {
		// An in-process request's context may come from a client's
		// request (the console's page), with that client's guard in it.
		return compare(), nil
	}
	ok, wait := gd.g.check(realm, gd.client, presented, compare)
	if wait > 0 {
		return false, &Blocked{Wait: wait}
	}
	return ok, nil
}

// Check is the package's Check for a request on a listener that put no
// Guard in its requests' contexts (the webhook listener): r's address is
// counted in g.
func (g *Guard) Check(r *http.Request, realm, presented string, compare func() bool) (bool, error) {
	ok, wait := g.check(realm, clientOf(r), presented, compare)
	if wait > 0 {
		return false, &Blocked{Wait: wait}
	}
	return ok, nil
}

// SetRetryAfter sets Retry-After on h when err is a *Blocked.
func SetRetryAfter(h http.Header, err error) {
	if b, ok := err.(*Blocked); ok {
		h.Set("Retry-After", b.RetryAfter())
	}
}

// middleware puts g and the client's address into each request's context
// for Check (once: an in-process request passes it again).
func (g *Guard) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if _, seen := r.Context().Value(guardKey{}).(guarded); !seen {
			c.SetRequest(r.WithContext(context.WithValue(r.Context(), guardKey{}, guarded{g, clientOf(r)})))
		}
		return next(c)
	}
}

// clientOf is the address r's failures count against: the TCP peer's IP,
// an IPv6 one by its /64 (one host holds a whole /64).
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() != nil {
		return host
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
