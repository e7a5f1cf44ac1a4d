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
	"time"

	"github.com/nats-io/nats.go"
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
//
// A cluster that cannot place the stream yet (no meta leader, or fewer
// JetStream servers online than cfg.Replicas: just after the cluster
// started) is waited for until ctx ends, with a warning every
// placementWarnEvery (the first after placementWarnAfter) that says what
// is missing: a service started with its cluster must not exit because a
// peer reported a moment later.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, log *zap.Logger) (jetstream.Stream, error) {
	wait, start, warned := 50*time.Millisecond, time.Now(), time.Time{}
	for {
		s, err := ensure(ctx, js, cfg, log)
		if err == nil || !pending(err) || ctx.Err() != nil {
			return s, err
		}
		// Quiet for the moment a normal cluster start takes, then every
		// placementWarnEvery.
		if log != nil && time.Since(start) >= placementWarnAfter && time.Since(warned) >= placementWarnEvery {
			warned = time.Now()
			msg := "waiting for JetStream to place a stream: " + Env + "=" + strconv.Itoa(max(cfg.Replicas, 1)) +
				" needs that many JetStream servers online, with room for the stream; start them or lower " + Env
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
				msg = "waiting for JetStream to answer: a cluster without a meta leader yet (start its servers; " + Env + "=" +
					strconv.Itoa(max(cfg.Replicas, 1)) + " needs that many), or a NATS user not allowed to receive the API's replies ($JS.API.> and _INBOX.>)"
			}
			log.Warn(msg, zap.String("stream", cfg.Name), zap.Duration("waited", time.Since(start).Round(time.Second)), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil, err // named: "create stream X: …" or "stream X: …"
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// The warnings of a wait for placement: the first after placementWarnAfter,
// then every placementWarnEvery.
const (
	placementWarnAfter = 3 * time.Second
	placementWarnEvery = 15 * time.Second
)

// pending reports whether err is JetStream's answer while a cluster lacks
// the peers a stream needs or has no meta leader yet (its API requests time
// out then): both pass once servers join.
func pending(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
		return true
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case errCodeNoPeers, errCodeClusterNotAvailable, errCodeInsufficientResources:
		return true
	}
	return false
}

// JetStream's error codes (nats-server's errors.json) that nats.go has no
// constant for.
const (
	errCodeNoPeers               jetstream.ErrorCode = 10005 // JSClusterNoPeersErrF: "no suitable peers for placement"
	errCodeClusterNotAvailable   jetstream.ErrorCode = 10008 // JSClusterNotAvailErr
	errCodeInsufficientResources jetstream.ErrorCode = 10023 // JSInsufficientResourcesErr
)

func ensure(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, log *zap.Logger) (jetstream.Stream, error) {
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

// DLQ is stream DLQ as the sender creates it (internal/sender streams.go):
// every dead letter, on dlq.<reason>, kept 14 days (DLQ_MAX_AGE in
// design.md) with an hour's duplicate window. Forwarding and the partner
// notifications create it with this when they run without a sender.
func DLQ(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       "DLQ",
		Subjects:   []string{"dlq.>"},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     14 * 24 * time.Hour,
		Duplicates: time.Hour,
		Replicas:   max(replicas, 1),
	}
}
