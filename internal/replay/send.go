package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/webhook"
	"golang.org/x/time/rate"
)

// OnPremSecretHeader carries the shared secret ingest checks on the
// On-Premises path (Meta does not sign those deliveries).
const OnPremSecretHeader = "X-Onprem-Secret"

// outcome is what became of one body.
type outcome struct {
	ok       bool
	status   int // HTTP status of the last attempt; 0 when none answered
	attempts int // requests sent
	notSent  bool
	reason   string // why it failed; never quotes the body
}

// handler checks, then sends or describes, one body at a time.
type handler struct {
	cfg             *Config
	onPremAuthInURL bool // the On-Premises target carries basic auth in its URL
	outMu           sync.Mutex
	enc             *json.Encoder
}

func newHandler(cfg *Config) *handler {
	h := &handler{cfg: cfg, enc: json.NewEncoder(cfg.Out)}
	h.enc.SetEscapeHTML(false)
	if u, err := url.Parse(cfg.OnPremTarget); err == nil && u.User != nil {
		h.onPremAuthInURL = true
	}
	return h
}

func (h *handler) handle(ctx context.Context, it Item) outcome {
	if it.Err != nil {
		return outcome{notSent: true, reason: it.Err.Error()}
	}
	c, err := check(it.Body, it.Path, h.cfg.OnPremWABAID)
	if h.cfg.DryRun {
		h.outMu.Lock()
		werr := h.enc.Encode(dryRunRecord(it.Source, c, err))
		h.outMu.Unlock()
		if werr != nil {
			return outcome{notSent: true, reason: "write output: " + werr.Error()}
		}
		if err != nil {
			return outcome{notSent: true, reason: err.Error()}
		}
		return outcome{ok: true}
	}
	if err != nil {
		return outcome{notSent: true, reason: err.Error()}
	}
	if c.onPrem && h.cfg.OnPremSecret == "" && !h.onPremAuthInURL {
		// Ingest would answer 401; saying why is more useful.
		return outcome{notSent: true, reason: "On-Premises body but ONPREM_SECRET is not set"}
	}
	return h.post(ctx, c.onPrem, it.Body)
}

// post sends body until it is accepted, refused (4xx) or out of retries.
// Like Meta, it retries 5xx answers and connection errors, with a growing
// wait between attempts; a 4xx will not change on retry.
func (h *handler) post(ctx context.Context, onPrem bool, body []byte) outcome {
	var o outcome
	for n := 0; ; n++ {
		if n > 0 {
			t := time.NewTimer(h.cfg.Backoff(n))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				o.reason = "interrupted"
				return o
			}
		}
		if h.cfg.Limiter != nil {
			if err := h.cfg.Limiter.Wait(ctx); err != nil {
				o.reason = "interrupted"
				return o
			}
		}
		o.attempts++
		status, msg, err := h.send(ctx, onPrem, body)
		o.status = status
		switch {
		case err == nil && status >= 200 && status < 300:
			o.ok = true
			return o
		case ctx.Err() != nil:
			o.reason = "interrupted"
			return o
		case err == nil && status < 500:
			o.reason = statusReason(status, msg)
			return o
		}
		if n == h.cfg.Retries {
			if err != nil {
				o.reason = fmt.Sprintf("no response after %d attempts: %v", o.attempts, err)
			} else {
				o.reason = statusReason(status, msg)
				if o.attempts > 1 {
					o.reason += fmt.Sprintf(" after %d attempts", o.attempts)
				}
			}
			return o
		}
	}
}

// send makes one signed request and returns the status and the first line
// of the answer (ingest's error text, which carries no personal data).
func (h *handler) send(ctx context.Context, onPrem bool, body []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	target := h.cfg.Target
	if onPrem {
		target = h.cfg.OnPremTarget
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ctmpipe-replay")
	// The signature covers the exact bytes sent. On-Premises bodies are not
	// signed by Meta; the signature is harmless there and the shared secret
	// is what ingest checks.
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, h.cfg.Secret))
	if onPrem && h.cfg.OnPremSecret != "" {
		req.Header.Set(OnPremSecretHeader, h.cfg.OnPremSecret)
	}
	resp, err := h.cfg.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	line, _, _ := bufio.NewReader(io.LimitReader(resp.Body, 512)).ReadLine()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, strings.TrimSpace(string(line)), nil
}

func statusReason(status int, msg string) string {
	r := fmt.Sprintf("status %d", status)
	if msg != "" {
		if len(msg) > 120 {
			msg = msg[:120] + "…"
		}
		r += " (" + msg + ")"
	}
	return r
}

// DefaultBackoff returns waits that double from base (base, 2·base, 4·base…,
// at most a minute), each with up to half of it taken off at random so that
// parallel workers hitting the same outage do not retry in lockstep.
func DefaultBackoff(base time.Duration) func(n int) time.Duration {
	return func(n int) time.Duration {
		d := base
		for i := 1; i < n && d < time.Minute; i++ {
			d *= 2
		}
		d = min(d, time.Minute)
		if d <= 1 {
			return d
		}
		return d - rand.N(d/2)
	}
}

// NewLimiter returns a Limiter that lets perSecond requests through a second,
// evenly spaced (burst 1, so a replay never bursts into ingest), or nil, no
// limit, when perSecond is 0 or less.
func NewLimiter(perSecond float64) Limiter {
	if perSecond <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(perSecond), 1)
}
