// Package console is the operator console at /console on the admin
// listener: server-rendered pages (html/template, a little hand-written
// JavaScript, no build step) over the admin API, called in process with
// ADMIN_TOKEN. Everything it shows comes from that API, so whatever an
// operator sees can be scripted with the same calls.
//
// Login takes ADMIN_TOKEN once and keeps a session cookie (HttpOnly,
// SameSite=Strict, Secure over TLS); POST forms also carry a per-session
// token and must come from the console's own origin. Every page is sent
// with a Content-Security-Policy that allows scripts, styles and images
// from the console itself only. With ADMIN_TOKEN unset the console is off
// (404), as the admin API is.
package console

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/internal/audit"
)

const basePath = "/console"

// contentSecurityPolicy allows nothing but the console's own script, style
// sheet, images and fetches; no inline script, no framing, forms post only
// to the console.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is the console's configuration.
type Config struct {
	// Token is ADMIN_TOKEN: what the login form asks for and what the
	// console calls the admin API with. Empty turns the console off.
	Token string
	// Timeout bounds each admin API call (15 s when 0).
	Timeout time.Duration
	// Log gets the console's own failures (nil: none). Never ids or tokens.
	Log *zap.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Console is the /console handler.
type Console struct {
	cfg  Config
	api  apiClient
	keys keys
	// revoked are the sessions logged out (auth.go).
	revoked revoked
	log     *zap.Logger
	now     func() time.Time
	pages   map[string]*template.Template
	mux     *http.ServeMux
}

// New returns the console over api, the admin API's handler (the admin
// listener's: admin.Server.Handler()), which it calls with cfg.Token.
func New(cfg Config, api http.Handler) *Console {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	c := &Console{cfg: cfg, api: apiClient{h: api, token: cfg.Token, timeout: cfg.Timeout},
		keys: newKeys(cfg.Token), log: cfg.Log, now: cfg.Now, pages: parsePages()}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	c.log = c.log.With(zap.String("component", "console"))
	if c.now == nil {
		c.now = time.Now
	}
	c.routes()
	return c
}

// Register mounts the console on e at /console and below.
func (c *Console) Register(e *echo.Echo) {
	h := echo.WrapHandler(c)
	e.Any(basePath, h)
	e.Any(basePath+"/*", h)
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, basePath+"/", http.StatusSeeOther)
	})
	m.HandleFunc("GET /console/login", c.loginPage)
	m.HandleFunc("POST /console/login", c.login)
	m.HandleFunc("POST /console/logout", c.authed(c.logout))
	m.HandleFunc("GET /console/{$}", c.authed(c.overview))
	m.HandleFunc("GET /console/live.json", c.live)
	m.HandleFunc("GET /console/businesses", c.authed(c.businesses))
	m.HandleFunc("GET /console/businesses/{id}", c.authed(c.business))
	m.HandleFunc("POST /console/businesses/{id}/resume", c.authed(c.resume))
	m.HandleFunc("GET /console/events", c.authed(c.event))
	m.HandleFunc("GET /console/dead-letters", c.authed(c.deadLetters))
	m.HandleFunc("GET /console/dead-letters/{seq}", c.authed(c.deadLetter))
	m.HandleFunc("POST /console/dead-letters/redrive", c.authed(c.redrive))
	m.HandleFunc("GET /console/audit", c.authed(c.audit))
	m.HandleFunc("POST /console/businesses/new", c.authed(c.createBusiness))
	m.HandleFunc("POST /console/businesses/{id}/settings", c.authed(c.saveSettings))
	m.HandleFunc("POST /console/businesses/{id}/enabled", c.authed(c.setEnabled))
	m.HandleFunc("GET /console/businesses/{id}/attempts", c.authed(c.attempts))
	c.mux = m
}

// ServeHTTP answers /console and below, with the security headers on every
// answer.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: with no-referrer browsers send
	// "Origin: null" on form POSTs, which the CSRF check refuses.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if c.cfg.Token == "" {
		http.Error(w, "console disabled: ADMIN_TOKEN is not set", http.StatusNotFound)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// authedHandler is a page handler of a logged-in browser.
type authedHandler func(w http.ResponseWriter, r *http.Request, s session)

// authed lets a logged-in browser through, checks a POST's CSRF defences,
// and sends anyone else to the login page.
func (c *Console) authed(next authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.sessionOf(r)
		if !ok {
			if r.Method != http.MethodGet {
				c.fail(w, r, http.StatusUnauthorized, "not logged in (or the session expired): log in again")
				return
			}
			http.Redirect(w, r, basePath+"/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && !c.checkPost(w, r, s) {
			return
		}
		// The API requests this session makes are audited as its own.
		next(w, r.WithContext(audit.WithActor(r.Context(), audit.ConsoleActor(s.id))), s)
	}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.sessionOf(r); ok {
		http.Redirect(w, r, basePath+"/", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "login", session{}, pageData{Title: "Log in"})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		c.fail(w, r, http.StatusForbidden, "this form was sent from another site (Origin check failed)")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	token := r.PostFormValue("token")
	ok, err := admin.Check(r, admin.RealmAdmin, token, func() bool { return c.keys.tokenMatches(token) })
	if err != nil {
		admin.SetRetryAfter(w.Header(), err)
		c.log.Info("console login refused: too many wrong tokens from this address")
		c.render(w, r, http.StatusTooManyRequests, "login", session{}, pageData{Title: "Log in",
			Error: "Too many wrong tokens from this address: try again in " + retryAfter(err) + "s."})
		return
	}
	if !ok {
		c.log.Info("console login refused")
		c.render(w, r, http.StatusUnauthorized, "login", session{}, pageData{Title: "Log in",
			Error: "That is not this server's ADMIN_TOKEN."})
		return
	}
	_, value := c.keys.newSession(c.now())
	setCookie(w, r, value)
	c.log.Info("console login")
	http.Redirect(w, r, basePath+"/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s session) {
	c.revoked.add(s, c.now())
	setCookie(w, r, "")
	http.Redirect(w, r, basePath+"/login", http.StatusSeeOther)
}

// fail answers a plain error page (the message is escaped).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s, _ := c.sessionOf(r)
	c.render(w, r, status, "error", s, pageData{Title: http.StatusText(status), Error: msg})
}

// retryAfter is the wait of admin.Check's refusal, in seconds.
func retryAfter(err error) string {
	if b, ok := err.(*admin.Blocked); ok {
		return b.RetryAfter()
	}
	return "60"
}
