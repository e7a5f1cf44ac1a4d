package ledger

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

// A take-over resends an event that is in doubt: only an operator may ask
// for it (sender redrive -force, after checking Events Manager), and the
// request travels out of band, as a force key next to the event's key that
// only AllowTakeOver writes. A message header would let anyone who can
// publish to the conversions subjects resend an event Meta may already have.
//
// forceKey is Key(id) with a suffix, so that it shares the id's hash tag (one
// Redis Cluster slot, as the script needs).
func (l *Ledger) forceKey(id string) string { return l.Key(id) + ":force" }

// DefaultForceTTL is how long an operator's take-over request waits for the
// redriven message: long enough for a sender that is behind or restarting,
// short enough that a forgotten request cannot resend a later copy.
const DefaultForceTTL = 24 * time.Hour

// AllowTakeOver records that an operator asked for ids to be resent although
// they are in doubt; the next TakeOver of each id uses the request up. It
// expires after ttl.
func (l *Ledger) AllowTakeOver(ctx context.Context, ids []string, ttl time.Duration) error {
	if len(ids) == 0 {
		return nil
	}
	dctx, w := replicas.Durable(ctx)
	_, err := l.rdb.Pipelined(dctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.Set(ctx, l.forceKey(id), "1", ttl)
		}
		return nil
	})
	if err == nil {
		err = w.Err()
	}
	if err != nil {
		return fmt.Errorf("ledger: allow take over: %w", err)
	}
	return nil
}

// takeOverScript: KEYS[1] the id's key, KEYS[2] its force key; ARGV owner,
// now ms, lease ms, ttl ms. Values are "c:" or "q:<deadline ms>:<owner>"
// (claimed) or "s:<ms>" (sent). Its claims are "c:": they never become free
// again on expiry (the operator forced this send; if it dies, it is in doubt
// again). Returns {1} claimed, {2} sent, {3, ms left} busy, {4} in doubt and
// no take-over asked for. A claim by the same owner is this call's own, run
// again by a retried pipeline. A claim uses the force key up.
var takeOverScript = redis.NewScript(`
local now = tonumber(ARGV[2])
local v = redis.call('GET', KEYS[1])
if v then
  if string.sub(v, 1, 1) == 's' then return {2} end
  local dl, by = string.match(v, '^[cq]:(%d+):(.*)$')
  if by == ARGV[1] then return {1} end
  dl = tonumber(dl)
  if dl and now < dl then return {3, dl - now} end
  if redis.call('EXISTS', KEYS[2]) == 0 then return {4} end
end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], 'c:' .. (now + tonumber(ARGV[3])) .. ':' .. ARGV[1], 'PX', ARGV[4])
return {1}
`)

// TakeOver is Claim that also claims in-doubt ids for which AllowTakeOver
// recorded an operator's request; other in-doubt ids stay InDoubt. Sent ids
// stay Sent.
func (l *Ledger) TakeOver(ctx context.Context, owner string, lease time.Duration, ids []string) ([]Result, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	nowMS := strconv.FormatInt(time.Now().UnixMilli(), 10)
	leaseMS := strconv.FormatInt(lease.Milliseconds(), 10)
	ttlMS := strconv.FormatInt(l.sentTTL.Milliseconds(), 10)
	keys := func(id string) []string { return []string{l.Key(id), l.forceKey(id)} }
	dctx, w := replicas.Durable(ctx)
	cmds, err := l.runKeys(dctx, takeOverScript, ids, keys, owner, nowMS, leaseMS, ttlMS)
	if err == nil {
		err = w.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: take over: %w", err)
	}
	out := make([]Result, len(ids))
	for i, c := range cmds {
		vals, err := c.Int64Slice()
		if err != nil || len(vals) == 0 {
			return nil, fmt.Errorf("ledger: take over: unexpected reply: %v", err)
		}
		switch vals[0] {
		case 1:
			out[i] = Result{State: Claimed}
		case 2:
			out[i] = Result{State: Sent}
		case 4:
			out[i] = Result{State: InDoubt}
		default:
			var ms int64
			if len(vals) > 1 {
				ms = vals[1]
			}
			out[i] = Result{State: Busy, Wait: time.Duration(ms) * time.Millisecond}
		}
	}
	return out, nil
}
