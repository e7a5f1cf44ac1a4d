// Package startup lets a service start before the servers it needs: it
// retries Redis and NATS with backoff, logging what it waits for by the
// setting that names it (REDIS_URL, NATS_URL), instead of exiting, so that
// a container started before its NATS (docker compose, a Kubernetes node
// coming up) becomes ready by itself. A Gate reports "not ready" to /readyz
// meanwhile.
package startup

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/pkg/capi"
)

// Backoff bounds: the first retry comes after MinBackoff, the wait doubles
// up to MaxBackoff (with jitter, so that many instances do not retry in
// step).
var (
	MinBackoff = 100 * time.Millisecond
	MaxBackoff = 5 * time.Second
)

// NoJetStream is the advice logged when NATS answers without JetStream.
const NoJetStream = "NATS at NATS_URL has no JetStream: start nats-server with -js (or a jetstream {} block in its config)"

// Gate says what a service still waits for; the zero Gate is ready.
type Gate struct {
	mu      sync.Mutex
	waiting string
}

// Wait records that the service waits for what (e.g. "Redis (REDIS_URL)").
func (g *Gate) Wait(what string) {
	g.mu.Lock()
	g.waiting = what
	g.mu.Unlock()
}

// Open records that the service waits for nothing any more.
func (g *Gate) Open() { g.Wait("") }

// Err is nil when the service is ready, else an error saying what it waits
// for. A nil Gate is ready.
func (g *Gate) Err() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waiting == "" {
		return nil
	}
	return errors.New("starting: waiting for " + g.waiting)
}

// retry calls try until it returns nil or ctx ends (then ctx's error). Each
// failure is logged as a warning with advice (advise may return "" for the
// default "retrying").
func retry(ctx context.Context, log *zap.Logger, what string, try func(context.Context) error, advise func(error) string) error {
	wait := MinBackoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := try(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info(what+" answers; starting", zap.Int("attempts", attempt))
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := "waiting for " + what + "; retrying"
		if a := advise(err); a != "" {
			msg = a + "; retrying"
		}
		sleep := wait/2 + rand.N(wait/2+1)
		log.Warn(msg, zap.Error(err), zap.Int("attempt", attempt), zap.Duration("retry_in", sleep))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(sleep):
		}
		wait = min(2*wait, MaxBackoff)
	}
}

// Redis calls ping until it succeeds or ctx ends, holding g (nil: none)
// at "Redis (REDIS_URL)" meanwhile. It returns ctx's error only.
func Redis(ctx context.Context, log *zap.Logger, g *Gate, ping func(context.Context) error) error {
	if g != nil {
		g.Wait("Redis (REDIS_URL)")
	}
	return retry(ctx, log, "Redis (REDIS_URL)", ping, func(error) string { return "" })
}

// Connect connects to url with opts, retrying the connection in the
// background as nats.RetryOnFailedConnect does, so that it returns at once
// unless url is malformed. Pass the connection to JetStream to wait.
func Connect(url string, opts ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(url, append([]nats.Option{nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("config: NATS_URL: %w", err)
	}
	return nc, nil
}

// JetStream waits until nc is connected and JetStream answers on it, or
// ctx ends (then it returns ctx's error), holding g (nil: none) at "NATS
// (NATS_URL)" meanwhile. When the server has no JetStream the log says to
// start it with -js.
func JetStream(ctx context.Context, log *zap.Logger, g *Gate, nc *nats.Conn, js jetstream.JetStream) error {
	if g != nil {
		g.Wait("NATS (NATS_URL)")
	}
	return retry(ctx, log, "NATS (NATS_URL)", func(ctx context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("nats %s", nc.Status())
		}
		_, err := js.AccountInfo(ctx)
		return err
	}, func(err error) string {
		if IsNoJetStream(err) {
			return NoJetStream
		}
		return ""
	})
}

// IsNoJetStream reports whether err says the server or account has no
// JetStream.
func IsNoJetStream(err error) bool {
	return errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) ||
		errors.Is(err, nats.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrJetStreamNotEnabledForAccount)
}

// GraphVersion logs what Meta's table of Marketing API versions says of
// version (GRAPH_API_VERSION) at now: an ERROR once it has expired (Meta
// refuses it with code 2635 or upgrades it on its own), a WARN within
// capi.VersionWarnWithin of its expiry or when this build does not know it,
// else an INFO line with its expiry.
func GraphVersion(log *zap.Logger, version string, now time.Time) capi.VersionState {
	st, expires, msg := capi.VersionStatus(version, now)
	fields := []zap.Field{zap.String("graph_api_version", version), zap.String("newest", capi.DefaultVersion),
		zap.String("state", st.String())}
	if !expires.IsZero() {
		fields = append(fields, zap.String("expires", expires.Format(time.DateOnly)))
	}
	switch st {
	case capi.VersionExpired:
		log.Error(msg, fields...)
	case capi.VersionExpiring, capi.VersionUnknown:
		log.Warn(msg, fields...)
	default:
		log.Info(msg, fields...)
	}
	return st
}
