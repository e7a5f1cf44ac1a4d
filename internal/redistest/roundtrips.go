package redistest

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// RoundTrips is a go-redis hook that counts a client's round trips: each
// single command and each pipeline is one. Add it with rdb.AddHook.
type RoundTrips struct{ N atomic.Int64 }

// DialHook passes dials through.
func (h *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook counts a single command.
func (h *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, c redis.Cmder) error { h.N.Add(1); return next(ctx, c) }
}

// ProcessPipelineHook counts a pipeline (or a transaction) once.
func (h *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, c []redis.Cmder) error { h.N.Add(1); return next(ctx, c) }
}
