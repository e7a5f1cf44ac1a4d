package embedstore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestRandomOpsMatchRedis sends the same seeded random sequence of hash,
// sorted set, string and key commands to redis-server and to the store,
// compares every reply, and every so often restarts the store (after a
// compaction or not) and compares the whole keyspace: what was journaled
// and snapshotted must come back as redis-server holds it.
func TestRandomOpsMatchRedis(t *testing.T) {
	real := startRedisRESP2(t)
	dir := t.TempDir()
	ctx := t.Context()
	s, err := Open(Options{Dir: dir})
	must(t, err)
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Protocol: 2})
	defer func() {
		c.Close()
		s.Close()
	}()
	rng := rand.New(rand.NewPCG(16, 12))
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5"}
	fields := []string{"a", "b", "c", "d"}
	pick := func(v []string) string { return v[rng.IntN(len(v))] }
	num := func() string { return fmt.Sprint(rng.IntN(7) - 2) }
	op := func() []any {
		k := pick(keys)
		switch rng.IntN(22) {
		case 0, 1:
			return []any{"HSET", k, pick(fields), num(), pick(fields), num()}
		case 2:
			return []any{"HDEL", k, pick(fields), pick(fields)}
		case 3:
			return []any{"HINCRBY", k, pick(fields), num()}
		case 4:
			return []any{"HGET", k, pick(fields)}
		case 5:
			return []any{"HLEN", k}
		case 6, 7:
			return []any{"ZADD", k, num(), pick(fields), num(), pick(fields)}
		case 8:
			return []any{"ZREM", k, pick(fields)}
		case 9:
			return []any{"ZINCRBY", k, num(), pick(fields)}
		case 10:
			return []any{"ZREMRANGEBYRANK", k, "0", num()}
		case 11:
			return []any{"ZRANGE", k, num(), num(), "WITHSCORES"}
		case 12:
			return []any{"ZRANGEBYSCORE", k, "(" + num(), "+inf", "LIMIT", "0", "2"}
		case 13:
			return []any{"SET", k, num()}
		case 14:
			return []any{"DEL", k}
		case 15:
			return []any{"EXPIRE", k, "1000"}
		case 16:
			return []any{"PERSIST", k}
		case 17:
			return []any{"EXPIRE", k, "-1"}
		case 18:
			return []any{"TYPE", k}
		case 19:
			return []any{"ZADD", k, "GT", "CH", num(), pick(fields)}
		case 20:
			return []any{"EVAL", "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return redis.call('HGETALL', KEYS[1])", "1", k, pick(fields), num()}
		}
		return []any{"EXISTS", k, pick(keys)}
	}
	dump := func(cl *redis.Client) string {
		var b strings.Builder
		for _, k := range keys {
			typ := cl.Type(ctx, k).Val()
			fmt.Fprintf(&b, "%s %s ttl=%v ", k, typ, cl.TTL(ctx, k).Val() > 0)
			switch typ {
			case "hash":
				h := cl.HGetAll(ctx, k).Val()
				fs := make([]string, 0, len(h))
				for f, v := range h {
					fs = append(fs, f+"="+v)
				}
				slices.Sort(fs)
				fmt.Fprint(&b, fs)
			case "zset":
				fmt.Fprint(&b, cl.ZRangeWithScores(ctx, k, 0, -1).Val())
			case "string":
				fmt.Fprint(&b, cl.Get(ctx, k).Val())
			}
			b.WriteString("\n")
		}
		return b.String()
	}
	for i := range 3000 {
		args := op()
		want, werr := real.Do(ctx, args...).Result()
		got, gerr := c.Do(ctx, args...).Result()
		if args[0] == "EVAL" { // HGETALL order differs: compare as sets
			want, got = sortedReply(want), sortedReply(got)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || !sameError(gerr, werr) {
			t.Fatalf("op %d %v: store = %v, %v; redis-server = %v, %v", i, args, got, gerr, want, werr)
		}
		if i%500 == 499 {
			if i%1000 == 999 {
				must(t, s.Compact())
			}
			c.Close()
			must(t, s.Close())
			s, err = Open(Options{Dir: dir})
			must(t, err)
			c = redis.NewClient(&redis.Options{Addr: s.Addr(), Protocol: 2})
			if w, g := dump(real), dump(c); w != g {
				t.Fatalf("after restart %d:\nstore:\n%s\nredis-server:\n%s", i/500, g, w)
			}
		}
	}
}

func sortedReply(v any) any {
	a, ok := v.([]any)
	if !ok {
		return v
	}
	var pairs []string
	for i := 0; i+1 < len(a); i += 2 {
		pairs = append(pairs, fmt.Sprint(a[i], "=", a[i+1]))
	}
	slices.Sort(pairs)
	return pairs
}
