// Package ledger remembers which events were sent to Meta, so that an event is
// posted at most once even though the queue delivers it at least once.
//
// Meta does not deduplicate business-messaging events, so the sender has to.
// Each event id has one Redis key. Before posting, a sender claims the ids with
// a lease; after Meta's 200 it marks them sent; after a definite failure (Meta
// answered with an error, so it did not take the events) it releases them.
//
//	(absent) --Claim--> claimed(owner, lease) --MarkSent--> sent
//	                         |  \--Release (definite failure)--> (absent)
//	                         \--lease expires, never marked--> in doubt, or
//	                             free again if its owner never began to post
//
// A claim whose lease expired without MarkSent means its owner died, stalled
// or lost its connection. If the owner had begun to post, Meta may or may not
// have the events: Claim reports those ids as InDoubt and never hands them out
// again; only TakeOver, which an operator asks for explicitly, does.
//
// To tell the two apart, an owner calls Posting just before its request
// leaves, which writes a marker for the owner (one key per claiming call, not
// per event). A Claim that finds an expired claim races for that same key:
// it writes a fence there, with SET NX, as Posting does. Exactly one of them
// wins. If the fence wins, the owner has not posted and never will (its
// Posting now fails), so the ids are claimed afresh; if the owner's marker
// won, the ids are in doubt. So a sender killed between claiming and posting
// no longer leaves its events in doubt, and a stalled one that wakes up after
// its lease cannot post what another sender took over. Claims written before
// owners marked their posts ("c:" values, from older senders) still turn
// into in doubt when they expire.
//
// Every key is one event, wrapped in a hash tag, so the ledger works on Redis
// Cluster. A batch is one pipelined round trip (per node): claims are plain
// SET NX (a second round trip reads the ids that were taken), releases and
// take-overs small Lua scripts that compare and change a key atomically.
//
// Every write Claim, Posting, MarkSent and TakeOver make waits for
// REDIS_MIN_REPLICAS replicas (internal/replicas: WAIT in the same
// pipeline) and fails with a *replicas.NotReplicatedError when they did not
// confirm it in time: a claim, fence or post marker that only the primary
// holds is lost with it in a failover, and a sender that went on would post
// an event the promoted replica does not know about (sent twice), or past a
// fence the new primary does not have. Release does not wait: a release
// lost in a failover leaves a claim that ends in doubt, never a duplicate.
//
// Lease deadlines come from the claiming sender's clock and are compared with
// the reading sender's clock, so senders must keep their clocks in sync (NTP);
// a skew shifts the moment a dead sender's claim turns in doubt by that much,
// which matters only for a send that takes its whole lease. Plain SET NX was
// chosen over a Lua script that reads Redis's TIME because a batch of 1000
// claims takes half the time (BenchmarkClaim1000: ~4.6 µs an id against
// ~9 µs for the script), on the sender's critical path.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

// DefaultSentTTL is how long a sent marker (and a claim) is kept: Meta takes
// events up to 7 days old, so a day more covers any redelivery of one.
const DefaultSentTTL = 8 * 24 * time.Hour

// State is what Claim found for an id.
type State int

// The states Claim reports.
const (
	// Claimed: the caller now holds the id and may post it.
	Claimed State = iota + 1
	// Sent: Meta accepted the event earlier; do not post it again.
	Sent
	// Busy: another owner holds a live lease; Result.Wait says how long.
	Busy
	// InDoubt: a claim expired without MarkSent; Meta may have the event.
	InDoubt
)

func (s State) String() string {
	switch s {
	case Claimed:
		return "claimed"
	case Sent:
		return "sent"
	case Busy:
		return "busy"
	case InDoubt:
		return "in_doubt"
	}
	return "unknown"
}

// Result is the outcome of claiming one id.
type Result struct {
	State State
	Wait  time.Duration // Busy: time left on the other owner's lease
}

// Ledger keeps the per-event state in Redis.
type Ledger struct {
	rdb     redis.UniversalClient
	prefix  string
	sentTTL time.Duration
}

// New returns a Ledger over rdb that keeps markers for sentTTL
// (DefaultSentTTL when 0).
func New(rdb redis.UniversalClient, sentTTL time.Duration) *Ledger {
	if sentTTL <= 0 {
		sentTTL = DefaultSentTTL
	}
	return &Ledger{rdb: rdb, prefix: "ctm:ledger:", sentTTL: sentTTL}
}

// ID returns the ledger id of the event eventID of business: the two
// joined by "/", with "%" and "/" in business escaped as %25 and %2F. The
// first "/" of an id then always ends the business, so two different
// (business, event_id) pairs never share an id: ("a/b", "c") used to meet
// ("a", "b/c") at "a/b/c". A business id without "%" or "/" (every id Meta
// issues is digits) keeps the id it had before, so markers written by
// older senders stay readable; only a business id holding "%" changed its
// ids, and with it the sent markers of its last SENT_TTL (see
// docs/contract.md).
func ID(business, eventID string) string {
	if strings.IndexByte(business, '/') < 0 && strings.IndexByte(business, '%') < 0 {
		return business + "/" + eventID
	}
	var b strings.Builder
	b.Grow(len(business) + len(eventID) + 8)
	for i := 0; i < len(business); i++ {
		switch c := business[i]; c {
		case '%':
			b.WriteString("%25")
		case '/':
			b.WriteString("%2F")
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('/')
	b.WriteString(eventID)
	return b.String()
}

// Key returns the Redis key of id. The whole id is the hash tag, so keys
// spread over a cluster while each one stays in a single slot.
func (l *Ledger) Key(id string) string { return l.prefix + "{" + id + "}" }

// Values of an id's key: "q:<deadline ms>:<owner>", a claim whose owner
// marks its posts (Posting); "c:<deadline ms>:<owner>", a claim whose owner
// may not (older senders, TakeOver); "s:<ms>", sent.

// Values of an owner's post marker key.
const (
	markPosting = "p" // the owner began to post
	markFenced  = "f" // another sender took over the owner's expired claims
)

// releaseScript deletes a claim held by ARGV[1]; sent markers and other
// owners' claims stay.
var releaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^[cq]:%d+:(.*)$') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// swapScript replaces KEYS[1] with ARGV[2] (for ARGV[3] ms) if it still
// holds ARGV[1]: a fenced claim changes hands only once.
var swapScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`)

// Claim claims ids for owner with a lease. The result has one entry per id.
// An owner must be unique per call (a process id and a counter): an id found
// claimed by the same owner counts as claimed, because that is this call's
// own write seen again (go-redis repeats a pipeline whose replies were lost
// to a broken connection). On an error some ids may be claimed: Release
// them with the same owner.
func (l *Ledger) Claim(ctx context.Context, owner string, lease time.Duration, ids []string) ([]Result, error) {
	out, err := l.ClaimMany(ctx, lease, []ClaimRequest{{Owner: owner, IDs: ids}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// ClaimRequest is one owner's ids for ClaimMany.
type ClaimRequest struct {
	Owner string
	IDs   []string
}

// ClaimMany is Claim for several owners at once (the requests of many
// businesses starting together), in the same round trips as one Claim: one
// pipeline of SET NX for every id of every request (go-redis sends it to
// each cluster node in one go) and, for ids found taken, one of GET. The
// result has one entry per request, each one per id. On an error some ids
// of any request may be claimed: each owner releases its own.
func (l *Ledger) ClaimMany(ctx context.Context, lease time.Duration, reqs []ClaimRequest) ([][]Result, error) {
	out := make([][]Result, len(reqs))
	n := 0
	for i, r := range reqs {
		out[i] = make([]Result, len(r.IDs))
		n += len(r.IDs)
	}
	if n == 0 {
		return out, nil
	}
	now := time.Now()
	deadline := strconv.FormatInt(now.Add(lease).UnixMilli(), 10)
	vals := make([]string, len(reqs))
	set := make([][]*redis.BoolCmd, len(reqs))
	all := make([]*redis.BoolCmd, 0, n)
	dctx, w := replicas.Durable(ctx)
	_, err := l.rdb.Pipelined(dctx, func(p redis.Pipeliner) error {
		for i, r := range reqs {
			vals[i] = "q:" + deadline + ":" + r.Owner
			set[i] = make([]*redis.BoolCmd, len(r.IDs))
			for j, id := range r.IDs {
				set[i][j] = p.SetNX(ctx, l.Key(id), vals[i], l.sentTTL)
				all = append(all, set[i][j])
			}
		}
		carry(ctx, p)
		return nil
	})
	if err := ownErr(err, all); err != nil {
		return nil, fmt.Errorf("ledger: claim: %w", err)
	}
	if err := w.Err(); err != nil {
		return nil, fmt.Errorf("ledger: claim: %w", err)
	}
	type ref struct{ req, i int }
	var taken []ref
	for r := range reqs {
		for i, c := range set[r] {
			if c.Val() {
				out[r][i] = Result{State: Claimed}
			} else {
				taken = append(taken, ref{r, i})
			}
		}
	}
	if len(taken) == 0 {
		return out, nil
	}
	get := make([]*redis.StringCmd, len(taken))
	if _, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, t := range taken {
			get[k] = p.Get(ctx, l.Key(reqs[t.req].IDs[t.i]))
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("ledger: claim: %w", err)
	}
	stale := make([][]staleClaim, len(reqs))
	for k, t := range taken {
		v := get[k].Val()
		var by string
		out[t.req][t.i], by = classify(v, reqs[t.req].Owner, now)
		if by != "" {
			stale[t.req] = append(stale[t.req], staleClaim{i: t.i, id: reqs[t.req].IDs[t.i], value: v, owner: by})
		}
	}
	for r := range reqs {
		if len(stale[r]) > 0 {
			if err := l.takeStale(ctx, vals[r], stale[r], out[r]); err != nil {
				return nil, fmt.Errorf("ledger: claim: %w", err)
			}
		}
	}
	return out, nil
}

// staleClaim is an expired claim whose owner marks its posts.
type staleClaim struct {
	i         int    // index in Claim's ids
	id, value string // the id and the claim found on it
	owner     string // the claim's owner
}

// takeStale settles expired claims (see the package comment): it fences
// each owner's post marker, then takes the ids of owners that never posted
// with val, and reports the others as in doubt. Results go to out. It is
// rare work (a sender died or stalled), so it spends round trips freely.
func (l *Ledger) takeStale(ctx context.Context, val string, stale []staleClaim, out []Result) error {
	marks := map[string]*redis.StringCmd{}
	// The fences must outlive a failover before anything is taken: a
	// fence the promoted replica lacks lets the fenced owner post.
	fctx, fw := replicas.Durable(ctx)
	if _, err := l.rdb.Pipelined(fctx, func(p redis.Pipeliner) error {
		for _, c := range stale {
			if _, ok := marks[c.owner]; !ok {
				p.SetNX(ctx, l.postKey(c.owner), markFenced, l.sentTTL)
				marks[c.owner] = p.Get(ctx, l.postKey(c.owner))
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := fw.Err(); err != nil {
		return err
	}
	var take []staleClaim
	for _, c := range stale {
		if marks[c.owner].Val() == markFenced {
			take = append(take, c)
		} else {
			out[c.i] = Result{State: InDoubt}
		}
	}
	if len(take) == 0 {
		return nil
	}
	ttl := strconv.FormatInt(l.sentTTL.Milliseconds(), 10)
	swaps := make([]*redis.Cmd, len(take))
	sctx, sw := replicas.Durable(ctx)
	if _, err := l.rdb.Pipelined(sctx, func(p redis.Pipeliner) error {
		for j, c := range take {
			swaps[j] = swapScript.Eval(ctx, p, []string{l.Key(c.id)}, c.value, val, ttl)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := sw.Err(); err != nil {
		return err
	}
	for j, c := range take {
		if n, _ := swaps[j].Int(); n == 1 {
			out[c.i] = Result{State: Claimed}
		} else {
			out[c.i] = Result{State: Busy, Wait: 100 * time.Millisecond} // another sender was faster
		}
	}
	return nil
}

// postKey is owner's post marker. The owner is its hash tag: an owner's
// claims span slots anyway.
func (l *Ledger) postKey(owner string) string { return l.prefix + "post:{" + owner + "}" }

// ErrFenced is Posting's answer when another sender has taken over owner's
// claims because their lease ran out: the owner must not post them.
var ErrFenced = errors.New("ledger: claims taken over after their lease ran out; not posting")

// Posting records that owner is about to post the ids it claimed. Call it
// just before every request; after it returns nil, an expired claim of
// owner's is in doubt, never claimed again by Claim. It returns ErrFenced
// when owner's lease ran out and another sender took the claims over (the
// caller must not post them), or another error when Redis could not record
// it (the caller must not post either: a crash would then look unposted).
func (l *Ledger) Posting(ctx context.Context, owner string) error {
	errs, err := l.PostingMany(ctx, []string{owner})
	if err != nil {
		return err
	}
	return errs[0]
}

// PostingMany is Posting for several owners in one round trip: the error
// is Redis's, else each owner's nil or ErrFenced.
func (l *Ledger) PostingMany(ctx context.Context, owners []string) ([]error, error) {
	set := make([]*redis.BoolCmd, len(owners))
	get := make([]*redis.StringCmd, len(owners))
	own := make([]redis.Cmder, 0, 2*len(owners))
	dctx, w := replicas.Durable(ctx)
	_, err := l.rdb.Pipelined(dctx, func(p redis.Pipeliner) error {
		for i, o := range owners {
			set[i] = p.SetNX(ctx, l.postKey(o), markPosting, l.sentTTL)
			get[i] = p.Get(ctx, l.postKey(o))
			own = append(own, set[i], get[i])
		}
		carry(ctx, p)
		return nil
	})
	if err := ownErr(err, own); err != nil {
		return nil, fmt.Errorf("ledger: posting: %w", err)
	}
	if err := w.Err(); err != nil {
		// The marker (or the fence it found) may be on the primary only:
		// not posting is the one safe answer.
		return nil, fmt.Errorf("ledger: posting: %w", err)
	}
	out := make([]error, len(owners))
	for i := range owners {
		if !set[i].Val() && get[i].Val() != markPosting { // set now, or by an earlier request of owner's
			out[i] = ErrFenced
		}
	}
	return out, nil
}

// classify reads the value SET NX found. An empty value means the key went
// away between SET NX and GET (released): busy for a moment. For an expired
// claim whose owner marks its posts, it also returns that owner: Claim then
// decides between in doubt and claimed (takeStale).
func classify(v, owner string, now time.Time) (_ Result, staleOwner string) {
	if strings.HasPrefix(v, "s:") {
		return Result{State: Sent}, ""
	}
	kind, rest, _ := strings.Cut(v, ":")
	dlText, by, _ := strings.Cut(rest, ":")
	dl, err := strconv.ParseInt(dlText, 10, 64)
	switch {
	case kind != "c" && kind != "q" || err != nil:
		return Result{State: Busy, Wait: 100 * time.Millisecond}, ""
	case by == owner:
		return Result{State: Claimed}, ""
	}
	if left := time.UnixMilli(dl).Sub(now); left > 0 {
		return Result{State: Busy, Wait: left}, ""
	}
	if kind == "q" {
		return Result{State: InDoubt}, by
	}
	return Result{State: InDoubt}, ""
}

// MarkSent records that Meta accepted ids, in one round trip. It overwrites
// whatever was there: once Meta said 200 the events are sent, even if the
// claim was lost meanwhile (a Redis restart, say).
func (l *Ledger) MarkSent(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	val := "s:" + strconv.FormatInt(time.Now().UnixMilli(), 10)
	own := make([]*redis.StatusCmd, len(ids))
	dctx, w := replicas.Durable(ctx)
	_, err := l.rdb.Pipelined(dctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			own[i] = p.Set(ctx, l.Key(id), val, l.sentTTL)
		}
		carry(ctx, p)
		return nil
	})
	if err := ownErr(err, own); err != nil {
		return fmt.Errorf("ledger: mark sent: %w", err)
	}
	if err := w.Err(); err != nil {
		return fmt.Errorf("ledger: mark sent: %w", err)
	}
	return nil
}

// Release drops owner's claims on ids, in one round trip, so that they can
// be claimed again. Call it only when Meta certainly did not take the events.
func (l *Ledger) Release(ctx context.Context, owner string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := l.run(ctx, releaseScript, ids, owner); err != nil {
		return fmt.Errorf("ledger: release: %w", err)
	}
	return nil
}

// run evaluates script once per id in one pipeline. Scripts go by SHA; when
// Redis does not know it (after a restart, a failover or SCRIPT FLUSH) it is
// loaded on every node and only the commands that failed with NOSCRIPT run
// again. Running the whole pipeline again would be wrong: another client may
// load the script while this pipeline runs, so some of its commands did take
// effect, and running them again is wasted work at best.
func (l *Ledger) run(ctx context.Context, s *redis.Script, ids []string, args ...any) ([]*redis.Cmd, error) {
	return l.runKeys(ctx, s, ids, func(id string) []string { return []string{l.Key(id)} }, args...)
}

// runKeys is run with the script's keys of each id from keys.
func (l *Ledger) runKeys(ctx context.Context, s *redis.Script, ids []string, keys func(string) []string, args ...any) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(ids))
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = s.EvalSha(ctx, p, keys(id), args...)
		}
		return nil
	})
	if err == nil {
		return cmds, nil
	}
	var again []int
	for i, c := range cmds {
		switch err := c.Err(); {
		case err == nil:
		case isNoScript(err):
			again = append(again, i)
		default:
			return nil, err
		}
	}
	if len(again) == 0 {
		return nil, err
	}
	if err := s.Load(ctx, l.rdb).Err(); err != nil {
		return nil, fmt.Errorf("load script: %w", err)
	}
	_, err = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, i := range again {
			cmds[i] = s.EvalSha(ctx, p, keys(ids[i]), args...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cmds, nil
}

func isNoScript(err error) bool {
	return errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")
}
