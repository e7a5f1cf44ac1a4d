package ingest

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// alertEvery is the least time between two WARN lines of one kind. The
// first failure is logged at once, so that an operator who just deployed a
// wrong META_APP_SECRET sees it in the first minute rather than when Meta
// unsubscribes the app; later ones are summed into the next line, so that
// anyone able to send requests cannot flood the log.
const alertEvery = 30 * time.Second

// alert logs one kind of failure at WARN, at most once per alertEvery, with
// the number of failures since the previous line. It is safe for
// concurrent use.
type alert struct {
	log   *zap.Logger
	msg   string
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	next time.Time
	n    int
}

func newAlert(log *zap.Logger, msg string) *alert {
	return &alert{log: log, msg: msg, every: alertEvery, now: time.Now}
}

// hit counts one failure and logs the line when one is due. fields must
// hold no personal data and no secrets.
func (a *alert) hit(fields ...zap.Field) {
	a.mu.Lock()
	a.n++
	now := a.now()
	if now.Before(a.next) {
		a.mu.Unlock()
		return
	}
	n := a.n
	a.n, a.next = 0, now.Add(a.every)
	a.mu.Unlock()
	a.log.Warn(a.msg, append(fields, zap.Int("count", n), zap.Duration("interval", a.every))...)
}

// alerts are the failures an operator must hear of without a log flood.
type alerts struct {
	signature *alert // webhooks whose signature matched no app secret
	store     *alert // webhooks answered 503 because the store failed
	overload  *alert // requests refused because the body budget was spent
	deadline  *alert // requests answered 503 at RESPONSE_DEADLINE
	onPrem    *alert // POST /webhook/onprem without the right ONPREM_SECRET
}

func newAlerts(log *zap.Logger) alerts {
	return alerts{
		signature: newAlert(log, "webhook signatures failing"),
		store:     newAlert(log, "store unavailable"),
		overload:  newAlert(log, "request bodies over MAX_BODY_BYTES_IN_FLIGHT"),
		deadline:  newAlert(log, "response deadline exceeded"),
		onPrem:    newAlert(log, "on-premises secrets failing"),
	}
}

// Reasons a signature check fails, as logged.
const (
	sigMissing   = "missing"
	sigMalformed = "malformed"
	sigMismatch  = "mismatch"
)

// signatureFailed counts a POST /webhook whose X-Hub-Signature-256 is
// missing, malformed or matches no secret, and alerts. The header itself
// is never logged.
func (s *Server) signatureFailed(reason string) {
	s.m.sigFailures.Inc()
	s.m.webhooks[chanUnknown][outBadSignature].Inc()
	hint := "requests without a usable signature header: scanners, or a proxy dropping the header"
	if reason == sigMismatch {
		hint = "signatures matching no secret: check that META_APP_SECRET holds the secret of every app that sends here"
	}
	s.alerts.signature.hit(zap.String("reason", reason), zap.String("hint", hint))
}
