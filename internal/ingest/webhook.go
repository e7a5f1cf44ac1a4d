package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// Paths, also sent as the Ctm-Path header of captured bodies.
const (
	pathWebhook = "/webhook"
	pathOnPrem  = "/webhook/onprem"
)

// onPremSecretHeader carries ONPREM_SECRET when basic auth is not used.
const onPremSecretHeader = "X-Onprem-Secret"

// handshake answers Meta's GET subscription check.
func (s *Server) handshake(c echo.Context) error {
	q := c.QueryParams()
	challenge, ok := webhook.Challenge(q.Get("hub.mode"), q.Get("hub.verify_token"), q.Get("hub.challenge"), s.cfg.VerifyToken)
	if !ok {
		return errHandshake
	}
	c.Response().Header().Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", []byte(challenge))
}

// postWebhook takes a signed delivery of any channel. This is the hot path:
// pooled body buffer, no decoding beyond webhook.Parse, one store call. A
// missing or malformed signature is refused before the body is read, so
// that an unsigned request costs no body buffer at all.
func (s *Server) postWebhook(c echo.Context) error {
	req := c.Request()
	sig := req.Header.Get(webhook.SignatureHeader)
	if !webhook.SignatureWellFormed(sig) {
		reason := sigMalformed
		if sig == "" {
			reason = sigMissing
		}
		s.signatureFailed(reason)
		return errBadSignature
	}
	bd, err := s.readBody(req)
	if err != nil {
		s.m.webhooks[chanUnknown][outcomeOf(err)].Inc()
		return err
	}
	defer s.releaseBody(bd)
	body := bd.b
	_, vspan := childSpan(req.Context(), "webhook.verify")
	verr := s.verifier.Verify(body, sig)
	endSpan(vspan, verr != nil, "signature mismatch")
	if verr != nil {
		s.signatureFailed(sigMismatch)
		return errBadSignature
	}
	// Forwarded byte for byte, whatever ingest itself makes of it: the
	// downstream judges its own payloads. Meta's retry of a delivery whose
	// store write failed is the same bytes, stored once (forwarding's duplicate window).
	if err := s.enqueueForward(req, body); err != nil {
		return err
	}
	p, err := webhook.Parse(body)
	if err != nil {
		s.m.webhooks[chanUnknown][outBadJSON].Inc()
		return errNotJSON
	}
	ch := channelOf(p.Channel)
	s.capture.offer(ch, pathWebhook, body)
	return s.record(c, ch, &p)
}

// enqueueForward stores body for forwarding when forwarding is on. NATS
// away answers 503 (Meta retries); a body NATS cannot take even with room
// for a dead letter's headers answers 413 and says so in the log, since a
// retry cannot change it.
func (s *Server) enqueueForward(req *http.Request, body []byte) error {
	if s.forward == nil {
		return nil
	}
	err := s.forward.Enqueue(req.Context(), body, req.Header)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrForwardTooLarge):
		s.m.webhooks[chanUnknown][outTooLarge].Inc()
		s.log.Error("webhook body too large to forward: raise NATS max_payload", zap.Int("body_bytes", len(body)))
		return errForwardTooLarge
	case errors.Is(err, ErrForwardQueue):
		s.m.webhooks[chanUnknown][outQueueError].Inc()
		return queueError(err)
	}
	s.m.webhooks[chanUnknown][outQueueError].Inc()
	return err // ErrUnsigned cannot happen after verification: a 500
}

// postOnPrem takes a WhatsApp On-Premises delivery. Meta does not sign
// these, so the operator's shared secret guards the path, and the WABA id
// comes from configuration because the payload carries none.
func (s *Server) postOnPrem(c echo.Context) error {
	if s.cfg.OnPremSecret == "" || s.cfg.OnPremWABAID == "" {
		// 404 rather than 403: the endpoint does not exist until configured.
		return errOnPremDisabled
	}
	req := c.Request()
	if ok, err := s.onPremAuthorized(req); err != nil {
		s.m.webhooks[chanOnPrem][outUnauthorized].Inc()
		admin.SetRetryAfter(c.Response().Header(), err)
		return &httpError{status: http.StatusTooManyRequests, msg: err.Error()}
	} else if !ok {
		s.m.webhooks[chanOnPrem][outUnauthorized].Inc()
		return errOnPremAuth
	}
	bd, err := s.readBody(req)
	if err != nil {
		s.m.webhooks[chanOnPrem][outcomeOf(err)].Inc()
		return err
	}
	defer s.releaseBody(bd)
	body := bd.b
	p, err := webhook.ParseOnPrem(body, s.cfg.OnPremWABAID)
	if err != nil {
		s.m.webhooks[chanOnPrem][outBadJSON].Inc()
		return errNotJSON
	}
	s.capture.offer(chanOnPrem, pathOnPrem, body)
	return s.record(c, chanOnPrem, &p)
}

// onPremAuthorized accepts ONPREM_SECRET as the X-Onprem-Secret header or
// as the basic-auth password (any user name), compared in constant time.
// The path faces the internet, so wrong secrets are counted per address by
// the webhook listener's guard (realm onprem, as the admin listener counts
// tokens): after admin.GuardMaxFailures distinct ones in a window the
// address gets a *admin.Blocked (429) without a comparison. A request
// presenting no secret is no guess. Every failure is alerted (WARN, at
// most once per alertEvery), so that a wrong secret on the client side or
// a guessing run shows in the log.
func (s *Server) onPremAuthorized(req *http.Request) (bool, error) {
	presented := req.Header.Get(onPremSecretHeader)
	if presented == "" {
		presented = req.Header.Get("Authorization") // basic auth: the header is the guess's identity
	}
	if presented == "" {
		s.alerts.onPrem.hit(zap.String("reason", sigMissing))
		return false, nil
	}
	ok, err := s.guard.Check(req, admin.RealmOnPrem, presented, func() bool {
		if h := req.Header.Get(onPremSecretHeader); h != "" && secretEqual(h, s.cfg.OnPremSecret) {
			return true
		}
		_, pw, ok := req.BasicAuth()
		return ok && secretEqual(pw, s.cfg.OnPremSecret)
	})
	switch {
	case err != nil:
		s.alerts.onPrem.hit(zap.String("reason", "blocked"))
	case !ok:
		s.alerts.onPrem.hit(zap.String("reason", sigMismatch))
	}
	return ok, err
}

// maxTouchesPerDelivery bounds the ad clicks one delivery may carry. Meta
// batches at most 1,000 updates in a delivery (Meta, "Webhooks: Getting
// Started", https://developers.facebook.com/docs/graph-api/webhooks/getting-started), and each
// WhatsApp update holds at most a few messages, so 5,000 is far above what
// Meta sends while bounding what one signed body can make ingest write: up
// to 4 keys a click, 20,000 keys in one write. Past it the delivery is
// refused whole with 413, never half stored; Meta's retries would not change
// it, and a log line says so.
const maxTouchesPerDelivery = 5000

// record stores the touches of p and answers 200 only after the write
// succeeded; 503 otherwise, so that Meta redelivers. Touches the store could
// not key are counted and dropped here, before the write: one bad click
// neither fails the write it would share with other deliveries nor costs a
// round trip per click.
func (s *Server) record(c echo.Context, ch channel, p *webhook.Payload) error {
	if len(p.Touches) > maxTouchesPerDelivery {
		s.m.webhooks[ch][outTooLarge].Inc()
		s.log.Warn("webhook delivery refused: too many ad clicks",
			zap.String("channel", ch.String()),
			zap.Int("touches", len(p.Touches)),
			zap.Int("max_touches", maxTouchesPerDelivery))
		return errTooManyTouches
	}
	setAttrs(c.Request().Context(), ch, len(p.Touches))
	received := time.Now()
	touches := make([]attribution.Touch, 0, len(p.Touches))
	var ids []string // the aliases of all touches share one array
	invalid := 0
	for i := range p.Touches {
		var t attribution.Touch
		t, ids = toAttribution(&p.Touches[i], received, ids)
		if t.Validate() != nil {
			invalid++
			continue
		}
		touches = append(touches, t)
	}
	if bad := p.Malformed + invalid; bad > 0 {
		s.logMalformed(ch, p.Object, bad, len(touches))
	}
	if len(touches) == 0 {
		out := outIgnored
		if bad := p.Malformed + invalid; bad > 0 {
			out = outMalformed
		}
		if len(p.IDChanges) > 0 {
			if err := s.changeIDs(c.Request().Context(), ch, p.IDChanges); err != nil {
				s.m.webhooks[ch][outStoreError].Inc()
				return storeError(err)
			}
			out = outStored
		}
		if err := s.publishAutomatic(c, ch, p); err != nil {
			return err
		}
		s.m.webhooks[ch][out].Inc()
		return c.NoContent(http.StatusOK)
	}
	ctx, span := childSpan(c.Request().Context(), "webhook.store")
	err := s.policiesFor(ctx, touches)
	if err == nil {
		err = s.rec.Record(ctx, touches)
	}
	endSpan(span, err != nil, "store write failed")
	if err == nil {
		// After the clicks: a delivery may carry a click and then the id
		// change of the same user.
		err = s.changeIDs(ctx, ch, p.IDChanges)
	}
	if err != nil {
		s.m.webhooks[ch][outStoreError].Inc()
		return storeError(err)
	}
	s.stats.count(touches)
	if err := s.publishAutomatic(c, ch, p); err != nil {
		return err
	}
	s.m.webhooks[ch][outStored].Inc()
	s.m.touches[channelOf(p.Touches[0].Channel)].Add(float64(len(touches)))
	return c.NoContent(http.StatusOK)
}

// publishAutomatic publishes p's automatic events as conversions, after
// the contexts were written and before the 200: JetStream away answers 503
// and Meta redelivers (their event_ids make the retry a duplicate). Events
// no retry could fix are counted and logged by event_id (a hash), never by
// click id.
func (s *Server) publishAutomatic(c echo.Context, ch channel, p *webhook.Payload) error {
	if s.auto == nil || len(p.AutomaticEvents) == 0 {
		return nil
	}
	res, err := s.auto.Publish(c.Request().Context(), p.AutomaticEvents)
	if err != nil {
		s.m.webhooks[ch][outQueueError].Inc()
		return queueError(err)
	}
	for _, r := range res.Invalid {
		s.log.Warn("automatic event not reported: it breaks the conversion contract", zap.String("event_id", r.EventID), zap.String("reason", r.Reason))
	}
	s.log.Debug("automatic events published", zap.Int("published", res.Published), zap.Int("duplicates", res.Duplicates),
		zap.Int("disabled", res.Disabled), zap.Int("no_click", res.NoClick), zap.Int("invalid", len(res.Invalid)))
	return nil
}

// logMalformed notes events that looked like ad clicks but could not be
// keyed; the delivery still gets 200 because a retry would not fix them.
func (s *Server) logMalformed(ch channel, object string, malformed, stored int) {
	s.log.Warn("webhook events could not be keyed",
		zap.String("channel", ch.String()),
		zap.String("object", safeObject(object)),
		zap.Int("malformed", malformed),
		zap.Int("stored", stored))
}

// safeObject returns the payload's object when it is one Meta documents, so
// that an arbitrary string from a signed body never reaches the log.
func safeObject(o string) string {
	switch o {
	case "page", "instagram", "whatsapp_business_account", "onprem":
		return o
	}
	return "other"
}

// toAttribution maps a parsed click to the store's Touch. A click without a
// time, or with one too far ahead, is stored as received (attribution.ClickTime).
// The user's other ids (WhatsApp: BSUID, parent BSUID, from when it differs
// from wa_id) become aliases, appended to ids, so that a conversion naming
// any of them finds the click.
func toAttribution(t *webhook.Touch, received time.Time, ids []string) (attribution.Touch, []string) {
	var at time.Time
	if t.Time > 0 {
		at = time.Unix(t.Time, 0)
	}
	start := len(ids)
	for _, id := range [...]string{t.BSUID, t.ParentBSUID, t.From} {
		if id != "" && id != t.UserID {
			ids = append(ids, id)
		}
	}
	var aliases []string
	if len(ids) > start {
		aliases = ids[start:len(ids):len(ids)]
	}
	return attribution.Touch{
		Key: attribution.Key{
			Channel:    string(t.Channel),
			BusinessID: t.BusinessID,
			UserID:     t.UserID,
		},
		Aliases:       aliases,
		PhoneNumberID: t.PhoneNumberID,
		ClickID:       t.ClickID,
		AdID:          t.AdID,
		SourceType:    t.SourceType,
		SourceURL:     t.SourceURL,
		Ref:           t.Ref,
		Time:          attribution.ClickTime(at, received).UTC(),
	}, ids
}

func channelOf(c webhook.Channel) channel {
	switch c {
	case webhook.WhatsApp:
		return chanWhatsApp
	case webhook.Messenger:
		return chanMessenger
	case webhook.Instagram:
		return chanInstagram
	}
	return chanUnknown
}

// outcomeOf maps a readBody error to its metric outcome.
func outcomeOf(err error) outcome {
	switch {
	case errors.Is(err, errBodyTooLarge):
		return outTooLarge
	case errors.Is(err, errOverloaded):
		return outOverloaded
	case errors.Is(err, errDeadline):
		return outDeadline
	}
	return outBadJSON
}

// secretEqual compares a presented secret with the configured one in
// constant time, independent of both lengths (hashing first). An empty
// configured secret never matches.
func secretEqual(got, want string) bool {
	if want == "" {
		return false
	}
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return hmac.Equal(g[:], w[:])
}
