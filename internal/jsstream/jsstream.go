// Package jsstream creates the JetStream streams the services own with the
// replica count STREAM_REPLICAS asks for, and says what to do when an
// existing stream has another one.
//
// An existing stream's replica count is never changed by a service: during
// a rolling update two versions with different settings would move it back
// and forth, raising it copies every message to new peers while the stream
// is in use, and an operator may have chosen it on purpose. The mismatch is
// logged with the command that changes it.
package jsstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/settings"
)

// Env is the setting's environment variable.
const Env = "STREAM_REPLICAS"

// MaxReplicas is JetStream's own limit on a stream's replicas.
const MaxReplicas = 5

// Setting is STREAM_REPLICAS for --help; every service that creates
// streams lists it.
func Setting() settings.Setting {
	return settings.Setting{Env: Env, Flag: "stream-replicas", Default: "1",
		Help: "replicas of the JetStream streams this service creates (1 on a single NATS server, 3 on a cluster); an existing stream with another count is logged, not changed"}
}

// Replicas reads STREAM_REPLICAS from v: 1 to 5.
func Replicas(v *settings.Values) (int, error) {
	n, err := strconv.Atoi(v.Text(Env))
	if err != nil || n < 1 || n > MaxReplicas {
		return 0, fmt.Errorf("config: %s: want a number from 1 to %d (3 on a NATS cluster)", Env, MaxReplicas)
	}
	return n, nil
}

// Ensure creates cfg's stream when it is absent and returns it. An existing
// stream is returned as it is; when its replica count is not cfg.Replicas
// (0 counts as 1) a warning on log (nil: none) says how to change it.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, log *zap.Logger) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, cfg.Name) // another instance was first
		} else if err != nil {
			return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	Check(log, s.CachedInfo().Config, cfg.Replicas)
	return s, nil
}

// Check logs on log (nil: nothing) when have's replica count is not want's.
// It reports whether they match.
func Check(log *zap.Logger, have jetstream.StreamConfig, want int) bool {
	h, w := max(have.Replicas, 1), max(want, 1)
	if h == w {
		return true
	}
	if log != nil {
		log.Warn("stream has another replica count than "+Env+"; it is left as it is: change it with `nats stream edit "+
			have.Name+" --replicas "+strconv.Itoa(w)+"` or set "+Env+"="+strconv.Itoa(h),
			zap.String("stream", have.Name), zap.Int("replicas", h), zap.Int("stream_replicas", w))
	}
	return false
}
