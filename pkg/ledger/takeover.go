package ledger

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// takeOverScript: KEYS[1] the id's key; ARGV owner, now ms, lease ms, ttl ms.
// Values are "c:" or "q:<deadline ms>:<owner>" (claimed) or "s:<ms>" (sent).
// Its claims are "c:": they never become free again on expiry (the operator
// forced this send; if it dies, it is in doubt again).
// Returns {1} claimed, {2} sent, {3, ms left} busy. A claim by the same
// owner is this call's own, run again by a retried pipeline.
var takeOverScript = redis.NewScript(`
local now = tonumber(ARGV[2])
local v = redis.call('GET', KEYS[1])
if v then
  if string.sub(v, 1, 1) == 's' then return {2} end
  local dl, by = string.match(v, '^[cq]:(%d+):(.*)$')
  if by == ARGV[1] then return {1} end
  dl = tonumber(dl)
  if dl and now < dl then return {3, dl - now} end
end
redis.call('SET', KEYS[1], 'c:' .. (now + tonumber(ARGV[3])) .. ':' .. ARGV[1], 'PX', ARGV[4])
return {1}
`)

// TakeOver is Claim that also claims in-doubt ids. It is for events an
// operator chose to resend after checking Meta; sent ids stay Sent.
func (l *Ledger) TakeOver(ctx context.Context, owner string, lease time.Duration, ids []string) ([]Result, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	nowMS := strconv.FormatInt(time.Now().UnixMilli(), 10)
	leaseMS := strconv.FormatInt(lease.Milliseconds(), 10)
	ttlMS := strconv.FormatInt(l.sentTTL.Milliseconds(), 10)
	cmds, err := l.run(ctx, takeOverScript, ids, owner, nowMS, leaseMS, ttlMS)
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
