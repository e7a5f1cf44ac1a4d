package embedstore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestHashAndZsetRepliesAsRedis sends the same hash, sorted set and
// transaction commands to redis-server and to the store and compares the
// replies, errors included (WRONGTYPE word for word).
func TestHashAndZsetRepliesAsRedis(t *testing.T) {
	real := startRedisRESP2(t)
	_, c := openTest(t, Options{Dir: t.TempDir()})
	ctx := t.Context()
	cmds := [][]any{
		// Hashes. HGETALL's fields are inserted in byte order: Redis
		// answers small hashes in insertion order, the store in byte order.
		{"HSET", "h", "a", "1", "b", "2"}, {"HSET", "h", "b", "3", "c", "x"}, {"HSET", "h", "a"},
		{"HGET", "h", "b"}, {"HGET", "h", "nope"}, {"HGET", "nokey", "a"}, {"HMGET", "h", "a", "nope", "c"},
		{"HMGET", "nokey", "a"}, {"HGETALL", "h"}, {"HGETALL", "nokey"}, {"HKEYS", "h"}, {"HVALS", "h"},
		{"HEXISTS", "h", "a"}, {"HEXISTS", "h", "z"}, {"HLEN", "h"}, {"HLEN", "nokey"}, {"HSTRLEN", "h", "c"},
		{"HINCRBY", "h", "a", "5"}, {"HINCRBY", "h", "n", "-2"}, {"HINCRBY", "h", "c", "1"},
		{"HINCRBY", "h", "a", "x"}, {"HINCRBY", "h", "a", "9223372036854775807"},
		{"HSETNX", "h", "a", "9"}, {"HSETNX", "h", "d", "9"}, {"HMSET", "h", "e", "1"},
		{"HDEL", "h", "a", "nope", "b"}, {"HDEL", "nokey", "a"}, {"TYPE", "h"}, {"EXISTS", "h"},
		{"HDEL", "h", "c", "d", "e", "n"}, {"EXISTS", "h"}, {"TYPE", "h"},
		// Sorted sets.
		{"ZADD", "z", "1", "a", "2", "b", "2", "c", "0.1", "d"}, {"ZADD", "z", "5", "a"}, {"ZADD", "z", "CH", "6", "a", "7", "e"},
		{"ZADD", "z", "NX", "9", "a", "8", "f"}, {"ZADD", "z", "XX", "9", "a", "8", "g"}, {"ZADD", "z", "GT", "1", "a"},
		{"ZADD", "z", "LT", "CH", "1", "a"}, {"ZADD", "z", "INCR", "2.5", "a"}, {"ZADD", "z", "NX", "XX", "1", "a"},
		{"ZADD", "z", "GT", "LT", "1", "a"}, {"ZADD", "z", "INCR", "1", "a", "2", "b"}, {"ZADD", "z", "x", "a"},
		{"ZADD", "z", "1"}, {"ZADD", "z", "nan", "a"}, {"ZADD", "z", "-inf", "lo", "+inf", "hi"}, {"ZINCRBY", "z", "1", "b"},
		{"ZCARD", "z"}, {"ZCARD", "nokey"}, {"ZSCORE", "z", "a"}, {"ZSCORE", "z", "d"}, {"ZSCORE", "z", "nope"},
		{"ZMSCORE", "z", "a", "nope"}, {"ZRANK", "z", "b"}, {"ZREVRANK", "z", "b"}, {"ZRANK", "z", "nope"},
		{"ZRANGE", "z", "0", "-1"}, {"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"ZRANGE", "z", "1", "2"},
		{"ZRANGE", "z", "-2", "-1"}, {"ZRANGE", "z", "5", "1"}, {"ZRANGE", "z", "0", "100"}, {"ZRANGE", "z", "x", "1"},
		{"ZRANGE", "z", "0", "-1", "REV"}, {"ZREVRANGE", "z", "0", "1", "WITHSCORES"},
		{"ZRANGE", "z", "(2", "+inf", "BYSCORE"}, {"ZRANGE", "z", "+inf", "(2", "BYSCORE", "REV", "LIMIT", "1", "2"},
		{"ZRANGE", "z", "0", "1", "LIMIT", "0", "1"}, {"ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"},
		{"ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES"}, {"ZRANGEBYSCORE", "z", "2", "3"},
		{"ZRANGEBYSCORE", "z", "(2", "8", "LIMIT", "1", "10"}, {"ZRANGEBYSCORE", "z", "a", "3"},
		{"ZREVRANGEBYSCORE", "z", "+inf", "-inf", "LIMIT", "0", "3"}, {"ZCOUNT", "z", "2", "(8"}, {"ZCOUNT", "z", "x", "1"},
		{"ZREMRANGEBYSCORE", "z", "-inf", "(0.5"}, {"ZREMRANGEBYRANK", "z", "-1", "-1"}, {"ZRANGE", "z", "0", "-1", "WITHSCORES"},
		{"ZREM", "z", "a", "nope", "b"}, {"ZREM", "nokey", "a"}, {"TYPE", "z"}, {"ZREMRANGEBYRANK", "z", "0", "-1"},
		{"EXISTS", "z"}, {"ZRANGE", "nokey", "0", "-1"},
		// Lexicographic ranges, all scores 0 (the registry's index).
		{"ZADD", "ix", "0", "b1", "0", "a2", "0", "c3", "0", "b2"}, {"ZRANGEBYLEX", "ix", "-", "+"},
		{"ZRANGEBYLEX", "ix", "(b1", "+", "LIMIT", "0", "2"}, {"ZRANGEBYLEX", "ix", "[b1", "(c3"},
		{"ZRANGEBYLEX", "ix", "b", "+"}, {"ZREVRANGEBYLEX", "ix", "+", "[b1"}, {"ZLEXCOUNT", "ix", "[a", "[b9"},
		{"ZRANGEBYLEX", "ix", "-", "+", "LIMIT", "1", "-1"},
		// Wrong types, both ways, and TTLs and expiry on the new types.
		{"SET", "s", "v"}, {"HGET", "s", "a"}, {"HSET", "s", "a", "1"}, {"ZADD", "s", "1", "a"}, {"ZRANGE", "s", "0", "-1"},
		{"ZSCORE", "s", "a"}, {"HINCRBY", "s", "a", "1"}, {"HGETALL", "s"}, {"ZCARD", "s"},
		{"HSET", "h2", "f", "v"}, {"GET", "h2"}, {"INCR", "h2"}, {"STRLEN", "h2"}, {"GETDEL", "h2"}, {"SET", "h2", "x", "GET"},
		{"MGET", "h2", "s"}, {"ZADD", "h2", "1", "a"}, {"ZRANGE", "h2", "0", "-1"}, {"HGET", "ix", "a"},
		{"EXPIRE", "h2", "100"}, {"TTL", "h2"}, {"PERSIST", "h2"}, {"TTL", "h2"}, {"PEXPIRE", "ix", "100000"}, {"TTL", "ix"},
		{"SETNX", "h2", "v"}, {"SET", "h2", "v", "NX"}, {"SET", "ix", "v", "XX", "KEEPTTL"}, {"TYPE", "ix"}, {"TTL", "ix"},
		{"HSET", "h3", "f", "v"}, {"SET", "h3", "str"}, {"GET", "h3"}, {"HSET", "h4", "f", "v"}, {"DEL", "h4", "h3", "nope"},
		{"EXISTS", "h4"}, {"HSET", "h5", "f", "v"}, {"EXPIRE", "h5", "-1"}, {"EXISTS", "h5"},
		// Scripts see hashes and sorted sets as Redis converts them.
		{"HSET", "hs", "a", "1"}, {"ZADD", "zs", "1", "m1", "2", "m2"},
		{"EVAL", "return {redis.call('HGET', KEYS[1], 'a'), redis.call('HGET', KEYS[1], 'no'), redis.call('HGETALL', KEYS[1]), redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES'), redis.call('ZCARD', KEYS[2]), redis.call('ZSCORE', KEYS[2], 'm2'), redis.call('HSET', KEYS[1], 'b', 2), redis.call('TYPE', KEYS[1])}", "2", "hs", "zs"},
		{"EVAL", "return tostring(redis.call('HGET', KEYS[1], 'no'))", "1", "hs"},
		{"EVAL", "local v = redis.call('ZCARD', KEYS[1]) - 1 return redis.call('ZREMRANGEBYRANK', KEYS[1], 0, v - 1)", "1", "zs"},
		{"EVAL", "return redis.call('HGET', KEYS[1], 'a')", "1", "zs"},
		{"EVAL", "return redis.pcall('HGET', KEYS[1], 'a')", "1", "zs"},
		{"EVAL", "return redis.call('MULTI')", "0"},
		{"DBSIZE"},
	}
	for _, args := range cmds {
		want, werr := real.Do(ctx, args...).Result()
		got, gerr := c.Do(ctx, args...).Result()
		if fmt.Sprint(got) != fmt.Sprint(want) || !sameError(gerr, werr) {
			t.Errorf("%v: store = %#v, %v; redis-server = %#v, %v", args, got, gerr, want, werr)
		}
	}
	// Key listings, whose order Redis does not fix.
	if keys := c.Keys(ctx, "*s").Val(); fmt.Sprint(keys) != "[hs s zs]" {
		t.Errorf("KEYS *s = %v; want [hs s zs]", keys)
	}
	for _, typ := range []string{"hash", "zset", "string"} {
		want, _, werr := real.ScanType(ctx, 0, "*", 1000, typ).Result()
		got, _, gerr := c.ScanType(ctx, 0, "*", 1000, typ).Result()
		slices.Sort(want)
		if gerr != nil || werr != nil || fmt.Sprint(got) != fmt.Sprint(want) || len(got) == 0 {
			t.Errorf("SCAN 0 TYPE %s = %v, %v; redis-server %v, %v", typ, got, gerr, want, werr)
		}
	}
}

// startRedisRESP2 is a client of a redis-server speaking RESP2, as the
// store does, so that replies compare as the same Go values.
func startRedisRESP2(t *testing.T) *redis.Client {
	t.Helper()
	real := startRedis(t)
	c := redis.NewClient(&redis.Options{Addr: real.Options().Addr, Protocol: 2})
	t.Cleanup(func() { c.Close() })
	return c
}

// sameError: both nil, or the store's message is the start of Redis's
// (which adds the script's name to errors raised in scripts), word for
// word.
func sameError(store, real error) bool {
	if store == nil || real == nil {
		return store == real
	}
	return strings.HasPrefix(real.Error(), store.Error())
}

// TestMultiExec: go-redis's TxPipelined (MULTI … EXEC) as the registry's
// Changes and the sender's resume use it, and MULTI's errors.
func TestMultiExec(t *testing.T) {
	real := startRedisRESP2(t)
	_, c := openTest(t, Options{Dir: t.TempDir()})
	ctx := t.Context()
	for _, cl := range []*redis.Client{real, c} {
		var get *redis.StringCmd
		var zr *redis.StringSliceCmd
		var del *redis.IntCmd
		must(t, cl.Set(ctx, "pause", "x", 0).Err())
		must(t, cl.ZAdd(ctx, "ch", redis.Z{Score: 3, Member: "b"}, redis.Z{Score: 5, Member: "c"}).Err())
		_, err := cl.TxPipelined(ctx, func(p redis.Pipeliner) error {
			get = p.Get(ctx, "nope")
			zr = p.ZRangeByScore(ctx, "ch", &redis.ZRangeBy{Min: "(3", Max: "+inf"})
			del = p.Del(ctx, "pause")
			p.Set(ctx, "ok", "1", time.Minute)
			return nil
		})
		if err != redis.Nil {
			t.Errorf("TxPipelined: %v; want redis.Nil (the GET's)", err)
		}
		if get.Err() != redis.Nil || fmt.Sprint(zr.Val()) != "[c]" || del.Val() != 1 || cl.Get(ctx, "ok").Val() != "1" {
			t.Errorf("replies: %v %v %v", get.Err(), zr.Val(), del.Val())
		}
	}
	for _, seq := range [][][]any{
		{{"MULTI"}, {"SET", "a", "1"}, {"INCR", "a"}, {"HGET", "a", "f"}, {"EXEC"}},
		{{"MULTI"}, {"MULTI"}, {"SET", "a", "2"}, {"NOPE"}, {"EXEC"}, {"GET", "a"}},
		{{"MULTI"}, {"GET"}, {"EXEC"}},
		{{"EXEC"}}, {{"DISCARD"}}, {{"MULTI"}, {"SET", "a", "3"}, {"DISCARD"}, {"GET", "a"}},
	} {
		var replies [2][]string
		for i, cl := range []*redis.Client{real, c} {
			conn := cl.Conn()
			for _, args := range seq {
				v, err := conn.Do(ctx, args...).Result()
				if err != nil && !errors.Is(err, redis.Nil) {
					e := err.Error()
					if i == 0 {
						// Redis adds the start of the arguments to some errors.
						e, _, _ = strings.Cut(e, ", with args")
					}
					replies[i] = append(replies[i], e)
					continue
				}
				replies[i] = append(replies[i], fmt.Sprint(v, " ", err))
			}
			conn.Close()
		}
		if fmt.Sprint(replies[0]) != fmt.Sprint(replies[1]) {
			t.Errorf("%v:\nstore        %q\nredis-server %q", seq, replies[1], replies[0])
		}
	}
}

// TestTypesSurviveRestart: hashes and sorted sets come back after a
// restart, from the journal alone and from a snapshot plus the journal
// after it, with their TTLs; HINCRBY replays as its sums; an expired hash
// that a later write started over comes back as the new one only.
func TestTypesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	ctx := t.Context()
	s, c := openTest(t, Options{Dir: dir, Now: clock.Now, SweepEvery: time.Hour})
	must(t, c.HSet(ctx, "{registry}:biz:1", "data", `{"x":1}`, "phones", "p1,p2").Err())
	must(t, c.HSet(ctx, "{registry}:phones", "p1", "1", "p2", "1", "p3", "2").Err())
	must(t, c.HDel(ctx, "{registry}:phones", "p3").Err())
	must(t, c.ZAdd(ctx, "{registry}:index", redis.Z{Member: "1"}, redis.Z{Member: "2"}, redis.Z{Member: "3"}).Err())
	must(t, c.ZRem(ctx, "{registry}:index", "2").Err())
	for range 3 {
		must(t, c.HIncrBy(ctx, "stats:m1", "sent", 2).Err())
	}
	must(t, c.Expire(ctx, "stats:m1", time.Hour).Err())
	must(t, c.HSet(ctx, "gone", "f", "v").Err())
	must(t, c.Del(ctx, "gone").Err())
	must(t, c.HSet(ctx, "emptied", "f", "v").Err())
	must(t, c.HDel(ctx, "emptied", "f").Err())
	// "renewed" expires, then a write starts it over without a TTL.
	must(t, c.HSet(ctx, "renewed", "old", "1").Err())
	must(t, c.PExpire(ctx, "renewed", time.Second).Err())
	must(t, c.HSet(ctx, "saved", "f", "v").Err())
	must(t, c.PExpire(ctx, "saved", time.Second).Err())
	must(t, c.Persist(ctx, "saved").Err())
	clock.Add(2 * time.Second)
	must(t, c.HSet(ctx, "renewed", "new", "1").Err())
	check := func(c *redis.Client, when string) {
		t.Helper()
		if h := c.HGetAll(ctx, "{registry}:biz:1").Val(); fmt.Sprint(h) != `map[data:{"x":1} phones:p1,p2]` {
			t.Errorf("%s: biz:1 = %v", when, h)
		}
		if h := c.HGetAll(ctx, "{registry}:phones").Val(); fmt.Sprint(h) != "map[p1:1 p2:1]" {
			t.Errorf("%s: phones = %v", when, h)
		}
		if ids := c.ZRangeByLex(ctx, "{registry}:index", &redis.ZRangeBy{Min: "-", Max: "+"}).Val(); fmt.Sprint(ids) != "[1 3]" {
			t.Errorf("%s: index = %v", when, ids)
		}
		if v := c.HGet(ctx, "stats:m1", "sent").Val(); v != "6" {
			t.Errorf("%s: stats sent = %q; want 6", when, v)
		}
		if ttl := c.TTL(ctx, "stats:m1").Val(); ttl <= 0 || ttl > time.Hour {
			t.Errorf("%s: stats TTL = %v; want under an hour", when, ttl)
		}
		if n := c.Exists(ctx, "gone", "emptied").Val(); n != 0 {
			t.Errorf("%s: %d deleted or emptied hashes came back", when, n)
		}
		if h := c.HGetAll(ctx, "renewed").Val(); fmt.Sprint(h) != "map[new:1]" || c.TTL(ctx, "renewed").Val() != -1 {
			t.Errorf("%s: renewed = %v (TTL %v); want only the new field, no TTL", when, h, c.TTL(ctx, "renewed").Val())
		}
		if h := c.HGetAll(ctx, "saved").Val(); fmt.Sprint(h) != "map[f:v]" {
			t.Errorf("%s: saved = %v; want the persisted hash", when, h)
		}
		if typ := c.Type(ctx, "{registry}:index").Val(); typ != "zset" {
			t.Errorf("%s: TYPE index = %q", when, typ)
		}
	}
	check(c, "before restart")
	c.Close()
	must(t, s.Close())

	// From the journal alone.
	s2, c2 := openTest(t, Options{Dir: dir, Now: clock.Now, SweepEvery: time.Hour})
	check(c2, "after restart (journal)")
	st := s2.Stats()
	must(t, s2.Compact())
	// A write after the snapshot, replayed on top of it.
	must(t, c2.ZAdd(ctx, "{registry}:index", redis.Z{Member: "4"}).Err())
	must(t, c2.ZRem(ctx, "{registry}:index", "4").Err())
	c2.Close()
	must(t, s2.Close())

	s3, c3 := openTest(t, Options{Dir: dir, Now: clock.Now, SweepEvery: time.Hour})
	check(c3, "after restart (snapshot)")
	if st3 := s3.Stats(); st3.Keys != st.Keys || st3.Bytes != st.Bytes {
		t.Errorf("Stats after snapshot = %d keys, %d bytes; before = %d, %d", st3.Keys, st3.Bytes, st.Keys, st.Bytes)
	}
	// The stats hash expires on the store's clock, and the sweep frees it.
	clock.Add(time.Hour)
	if n := s3.Sweep(); n != 1 {
		t.Errorf("Sweep removed %d keys; want 1 (the stats hash)", n)
	}
	if n := c3.Exists(ctx, "stats:m1").Val(); n != 0 {
		t.Error("the stats hash outlived its TTL")
	}
}

// TestSnapshotDuringFieldWrites: field records written while a snapshot is
// being copied replay onto it to the same final state.
func TestSnapshotDuringFieldWrites(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s, c := openTest(t, Options{Dir: dir})
	for i := range 50 {
		must(t, c.HSet(ctx, fmt.Sprintf("h%d", i), "f", "0").Err())
	}
	s.afterShard = func(i int) {
		if i%128 == 0 {
			// Writes in the middle of the copy land in the new segment.
			for j := range 50 {
				k := fmt.Sprintf("h%d", j)
				s.mu.Lock()
				now := s.nowMS()
				o, _ := s.objFor(k, kindHash, now, true)
				v := o.hash["n"]
				n := 0
				fmt.Sscan(v, &n)
				s.putHField(k, o, "n", fmt.Sprint(n+1), now)
				if j%2 == 0 {
					s.delHField(k, o, "f", now)
				}
				z, _ := s.objFor(k+"z", kindZset, now, true)
				s.putZMember(k+"z", z, "m", float64(i), now)
				s.mu.Unlock()
			}
		}
	}
	must(t, s.Compact())
	s.afterShard = nil
	want := map[string]map[string]string{}
	for j := range 50 {
		k := fmt.Sprintf("h%d", j)
		want[k] = c.HGetAll(ctx, k).Val()
		want[k+"z"] = map[string]string{"score": c.ZScore(ctx, k+"z", "m").String()}
	}
	c.Close()
	must(t, s.Close())
	_, c2 := openTest(t, Options{Dir: dir})
	for k, w := range want {
		got := c2.HGetAll(ctx, k).Val()
		if w["score"] != "" {
			got = map[string]string{"score": c2.ZScore(ctx, k, "m").String()}
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s after restart = %v; want %v", k, got, w)
		}
	}
}
