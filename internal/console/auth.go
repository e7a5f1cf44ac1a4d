package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Session cookie. It holds a random session id, when it was issued and an
// HMAC of both keyed with a key derived from ADMIN_TOKEN, never the token
// itself: a stolen cookie does not open the admin API, every process with
// the same token accepts it, and changing ADMIN_TOKEN ends every session.
const (
	cookieName = "ctm_console"
	// SessionTTL is how long a login lasts.
	SessionTTL = 12 * time.Hour
	csrfField  = "csrf"
)

// keys are the MAC keys derived from ADMIN_TOKEN.
type keys struct {
	session [32]byte
	token   [32]byte // the token's digest, for a constant-time comparison
}

func newKeys(token string) keys {
	return keys{
		session: sha256.Sum256([]byte("ctmpipe console session v1\x00" + token)),
		token:   sha256.Sum256([]byte(token)),
	}
}

// tokenMatches compares digests, so the time taken depends on neither
// token's length.
func (k keys) tokenMatches(got string) bool {
	d := sha256.Sum256([]byte(got))
	return hmac.Equal(d[:], k.token[:])
}

func (k keys) mac(parts ...string) string {
	m := hmac.New(sha256.New, k.session[:])
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// session is a logged-in browser.
type session struct {
	id      string
	csrf    string    // the per-session token every POST form carries
	expires time.Time // when its cookie stops being accepted anyway
}

// revoked are the sessions logged out before their cookie expired: a
// cookie copied before the logout (another tab, a stolen one) must not go
// on working for the rest of its 12 hours. Each entry is kept until the
// cookie would have expired; only a logged-in session can add one. The
// list is this process's: another process with the same ADMIN_TOKEN
// still accepts the cookie (changing ADMIN_TOKEN ends every session).
type revoked struct {
	mu  sync.Mutex
	ids map[string]time.Time // session id → its cookie's expiry
}

func (v *revoked) add(s session, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ids == nil {
		v.ids = map[string]time.Time{}
	}
	for id, exp := range v.ids {
		if !now.Before(exp) {
			delete(v.ids, id)
		}
	}
	v.ids[s.id] = s.expires
}

func (v *revoked) has(id string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.ids[id]
	return ok
}

// newSession issues a session at now and its cookie value.
func (k keys) newSession(now time.Time) (session, string) {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	id := base64.RawURLEncoding.EncodeToString(b)
	issued := strconv.FormatInt(now.Unix(), 10)
	return k.sessionFor(id, time.Unix(now.Unix(), 0)), id + "." + issued + "." + k.mac("session", id, issued)
}

func (k keys) sessionFor(id string, issued time.Time) session {
	return session{id: id, csrf: k.mac("csrf", id), expires: issued.Add(SessionTTL)}
}

// parseSession checks a cookie value: its MAC and its age.
func (k keys) parseSession(v string, now time.Time) (session, bool) {
	id, rest, ok1 := strings.Cut(v, ".")
	issued, mac, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || !hmac.Equal([]byte(mac), []byte(k.mac("session", id, issued))) {
		return session{}, false
	}
	at, err := strconv.ParseInt(issued, 10, 64)
	if err != nil {
		return session{}, false
	}
	age := now.Sub(time.Unix(at, 0))
	if age < -time.Minute || age > SessionTTL {
		return session{}, false
	}
	return k.sessionFor(id, time.Unix(at, 0)), true
}

// sessionOf is the request's session, if its cookie is valid.
func (c *Console) sessionOf(r *http.Request) (session, bool) {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return session{}, false
	}
	s, ok := c.keys.parseSession(ck.Value, c.now())
	if !ok || c.revoked.has(s.id) {
		return session{}, false
	}
	return s, true
}

// setCookie stores value (or clears the cookie when value is ""). HttpOnly:
// no script reads it; SameSite=Strict: no other site's page sends it;
// Secure when the console is served over TLS, directly or behind a proxy
// that says so (X-Forwarded-Proto: a client that forges it on plain HTTP
// only loses its own cookie).
func setCookie(w http.ResponseWriter, r *http.Request, value string) {
	secure := r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
	ck := &http.Cookie{Name: cookieName, Value: value, Path: basePath, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secure, MaxAge: int(SessionTTL / time.Second)}
	if value == "" {
		ck.MaxAge = -1
	}
	http.SetCookie(w, ck)
}

// sameOrigin is the CSRF check of every POST besides the session's token:
// a browser names the page's origin in Origin (or at least Sec-Fetch-Site)
// on a form POST; its host must be the one the request was sent to. The
// scheme is not compared, so that the check holds behind a proxy that ends
// TLS. A request with neither header (curl) passes on the token alone.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && strings.EqualFold(u.Host, r.Host)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// checkPost answers a POST that fails the CSRF checks with 403 and reports
// whether it passed.
func (c *Console) checkPost(w http.ResponseWriter, r *http.Request, s session) bool {
	if !sameOrigin(r) {
		c.fail(w, r, http.StatusForbidden, "this form was sent from another site (Origin check failed)")
		return false
	}
	if !hmac.Equal([]byte(r.PostFormValue(csrfField)), []byte(s.csrf)) {
		c.fail(w, r, http.StatusForbidden, "the form's session token is missing or stale: reload the page and try again")
		return false
	}
	return true
}
