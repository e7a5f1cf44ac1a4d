package ledger

import (
	"context"

	"github.com/redis/go-redis/v9"
)

type carryKey struct{}

// WithCarry returns ctx carrying fn: the first pipeline of each Claim,
// ClaimMany, Posting, PostingMany and MarkSent made with it also queues
// fn's commands, so that other writes (the sender's event trail) ride on a
// round trip the ledger makes anyway. Their replies are ignored: an error
// of theirs never fails the ledger's call.
func WithCarry(ctx context.Context, fn func(context.Context, redis.Pipeliner)) context.Context {
	if fn == nil {
		return ctx
	}
	return context.WithValue(ctx, carryKey{}, fn)
}

// carry queues ctx's carried commands on p.
func carry(ctx context.Context, p redis.Pipeliner) {
	if fn, ok := ctx.Value(carryKey{}).(func(context.Context, redis.Pipeliner)); ok {
		fn(ctx, p)
	}
}

// ownErr is the first error of the ledger's own commands, or, when they
// have none, nil: a pipeline's error may be a carried command's.
func ownErr[C redis.Cmder](err error, cmds []C) error {
	if err == nil {
		return nil
	}
	for _, c := range cmds {
		if e := c.Err(); e != nil && e != redis.Nil {
			return e
		}
	}
	return nil
}
