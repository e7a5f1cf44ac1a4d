package replicas

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// RunScript is script.Run as a write that must survive a failover: EVALSHA
// in a pipeline carrying its WAIT (EVAL, which also loads the script, when
// the server lost its script cache: after a restart or a failover, say).
// The error is the script's, else Writes.Err's; the Cmd holds the reply.
func RunScript(ctx context.Context, rdb redis.UniversalClient, script *redis.Script, keys []string, args ...any) (*redis.Cmd, error) {
	cmd, err := runScript(ctx, rdb, script.EvalSha, keys, args)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// EVALSHA failed without running the script: nothing was written.
		cmd, err = runScript(ctx, rdb, script.Eval, keys, args)
	}
	return cmd, err
}

func runScript(ctx context.Context, rdb redis.UniversalClient,
	call func(context.Context, redis.Scripter, []string, ...any) *redis.Cmd, keys []string, args []any,
) (*redis.Cmd, error) {
	dctx, w := Durable(ctx)
	var cmd *redis.Cmd
	_, err := rdb.Pipelined(dctx, func(p redis.Pipeliner) error {
		cmd = call(dctx, p, keys, args...)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return cmd, err
	}
	if werr := w.Err(); werr != nil {
		return cmd, werr
	}
	return cmd, err
}
