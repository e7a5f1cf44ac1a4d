package embedstore

import (
	"strconv"
	"strings"
)

// A command returns its reply as a value: nil (null bulk), int64, string
// (bulk), status, replyErr or []any. The same value becomes RESP for a
// client and a Lua value inside a script.
type (
	status   string
	replyErr string
)

const (
	errSyntax   = replyErr("ERR syntax error")
	errNotInt   = replyErr("ERR value is not an integer or out of range")
	errExpire   = replyErr("ERR invalid expire time in 'set' command")
	errNoScript = replyErr("NOSCRIPT No matching script. Please use EVAL.")
	// errWrongType is Redis's own text, which clients match on.
	errWrongType = replyErr("WRONGTYPE Operation against a key holding the wrong kind of value")
)

type command struct {
	fn    func(s *Store, args [][]byte, now int64) any
	arity int  // number of args including the name; negative: at least -arity
	write bool // changes keys (not allowed in EVAL_RO)
	// free commands touch no key and run without the store's lock, so
	// that a client's connection set-up (go-redis sends CLIENT SETINFO)
	// is answered while a script holds the store, as Redis answers it.
	free bool
}

// commandTable is the commands the services send (docs/embedded-store.md
// lists them), plus a few that help a person poke at the store with
// redis-cli. It is built per Store, not as a package variable, because
// EVAL refers back to it.
func commandTable() map[string]command {
	return map[string]command{
		"ping":       {fn: cmdPing, arity: -1},
		"echo":       {fn: func(_ *Store, a [][]byte, _ int64) any { return string(a[1]) }, arity: 2, free: true},
		"quit":       {fn: func(*Store, [][]byte, int64) any { return status("OK") }, arity: -1, free: true},
		"select":     {fn: cmdSelect, arity: 2, free: true},
		"client":     {fn: func(*Store, [][]byte, int64) any { return status("OK") }, arity: -2, free: true},
		"command":    {fn: func(*Store, [][]byte, int64) any { return []any{} }, arity: -1, free: true},
		"info":       {fn: cmdInfo, arity: -1},
		"dbsize":     {fn: func(s *Store, _ [][]byte, _ int64) any { return int64(s.keys) }, arity: 1},
		"get":        {fn: cmdGet, arity: 2},
		"mget":       {fn: cmdMGet, arity: -2},
		"exists":     {fn: cmdExists, arity: -2},
		"type":       {fn: cmdType, arity: 2},
		"ttl":        {fn: cmdTTL(1000), arity: 2},
		"pttl":       {fn: cmdTTL(1), arity: 2},
		"strlen":     {fn: cmdStrlen, arity: 2},
		"keys":       {fn: cmdKeys, arity: 2},
		"scan":       {fn: cmdScan, arity: -2},
		"set":        {fn: cmdSet, arity: -3, write: true},
		"setnx":      {fn: cmdSetNX, arity: 3, write: true},
		"setex":      {fn: cmdSetEx(1000), arity: 4, write: true},
		"psetex":     {fn: cmdSetEx(1), arity: 4, write: true},
		"mset":       {fn: cmdMSet, arity: -3, write: true},
		"getdel":     {fn: cmdGetDel, arity: 2, write: true},
		"del":        {fn: cmdDel, arity: -2, write: true},
		"unlink":     {fn: cmdDel, arity: -2, write: true},
		"expire":     {fn: cmdExpire(1000), arity: 3, write: true},
		"pexpire":    {fn: cmdExpire(1), arity: 3, write: true},
		"persist":    {fn: cmdPersist, arity: 2, write: true},
		"incr":       {fn: cmdIncrBy(1), arity: 2, write: true},
		"incrby":     {fn: cmdIncrBy(0), arity: 3, write: true},
		"flushall":   {fn: cmdFlush, arity: -1, write: true},
		"flushdb":    {fn: cmdFlush, arity: -1, write: true},
		"eval":       {fn: cmdEval(false, false), arity: -3, write: true},
		"evalsha":    {fn: cmdEval(true, false), arity: -3, write: true},
		"eval_ro":    {fn: cmdEval(false, true), arity: -3},
		"evalsha_ro": {fn: cmdEval(true, true), arity: -3},
		"script":     {fn: cmdScript, arity: -2},
		// Hashes (hashcmds.go).
		"hset":    {fn: cmdHSet("hset"), arity: -4, write: true},
		"hmset":   {fn: cmdHSet("hmset"), arity: -4, write: true},
		"hsetnx":  {fn: cmdHSetNX, arity: 4, write: true},
		"hget":    {fn: cmdHGet, arity: 3},
		"hmget":   {fn: cmdHMGet, arity: -3},
		"hdel":    {fn: cmdHDel, arity: -3, write: true},
		"hgetall": {fn: cmdHGetAll(true, true), arity: 2},
		"hkeys":   {fn: cmdHGetAll(true, false), arity: 2},
		"hvals":   {fn: cmdHGetAll(false, true), arity: 2},
		"hexists": {fn: cmdHExists, arity: 3},
		"hlen":    {fn: cmdHLen, arity: 2},
		"hstrlen": {fn: cmdHStrlen, arity: 3},
		"hincrby": {fn: cmdHIncrBy, arity: 4, write: true},
		// Sorted sets (zsetcmds.go).
		"zadd":             {fn: cmdZAdd, arity: -4, write: true},
		"zincrby":          {fn: cmdZIncrBy, arity: 4, write: true},
		"zrem":             {fn: cmdZRem, arity: -3, write: true},
		"zcard":            {fn: cmdZCard, arity: 2},
		"zscore":           {fn: cmdZScore, arity: 3},
		"zmscore":          {fn: cmdZMScore, arity: -3},
		"zrank":            {fn: cmdZRank(false), arity: 3},
		"zrevrank":         {fn: cmdZRank(true), arity: 3},
		"zrange":           {fn: cmdZRange(0, false), arity: -4},
		"zrevrange":        {fn: cmdZRange('r', true), arity: -4},
		"zrangebyscore":    {fn: cmdZRange('s', false), arity: -4},
		"zrevrangebyscore": {fn: cmdZRange('s', true), arity: -4},
		"zrangebylex":      {fn: cmdZRange('l', false), arity: -4},
		"zrevrangebylex":   {fn: cmdZRange('l', true), arity: -4},
		"zcount":           {fn: cmdZCount, arity: 4},
		"zlexcount":        {fn: cmdZLexCount, arity: 4},
		"zremrangebyrank":  {fn: cmdZRemRange('r'), arity: 4, write: true},
		"zremrangebyscore": {fn: cmdZRemRange('s'), arity: 4, write: true},
		// MULTI, EXEC and DISCARD are handled per connection (server.go);
		// these entries answer them from a script.
		"multi":   {fn: notFromScript, arity: 1},
		"exec":    {fn: notFromScript, arity: 1},
		"discard": {fn: notFromScript, arity: 1},
		// BGREWRITEAOF starts a compaction, as it starts an AOF rewrite in
		// Redis: loadgen measures both under one.
		"bgrewriteaof": {fn: cmdBGRewrite, arity: 1},
	}
}

// lookupCommand finds args[0] case-insensitively.
func (s *Store) lookupCommand(name []byte) (string, command, bool) {
	var b [16]byte
	if len(name) > len(b) {
		return "", command{}, false
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	c, ok := s.cmds[string(b[:len(name)])]
	return string(b[:len(name)]), c, ok
}

// exec runs one command under the store's lock and appends its reply.
func (s *Store) exec(out []byte, args [][]byte) []byte {
	if len(args) == 0 {
		return out
	}
	if _, c, ok := s.lookupCommand(args[0]); ok && c.free {
		return appendValue(out, s.call(args, false))
	}
	s.mu.Lock()
	v := s.call(args, false)
	s.mu.Unlock()
	return appendValue(out, v)
}

// call runs a command with mu held (from a client or from a script).
func (s *Store) call(args [][]byte, fromScript bool) any {
	name, c, ok := s.lookupCommand(args[0])
	if !ok {
		return replyErr("ERR unknown command '" + clip(string(args[0])) + "'")
	}
	if (c.arity > 0 && len(args) != c.arity) || (c.arity < 0 && len(args) < -c.arity) {
		return replyErr("ERR wrong number of arguments for '" + name + "' command")
	}
	if fromScript && strings.HasPrefix(name, "eval") || fromScript && name == "script" {
		return replyErr("ERR This Redis command is not allowed from script")
	}
	return c.fn(s, args, s.nowMS())
}

func notFromScript(*Store, [][]byte, int64) any {
	return replyErr("ERR This Redis command is not allowed from script")
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32]
	}
	return s
}

// appendValue encodes v as a RESP2 reply.
func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "$-1\r\n"...)
	case status:
		return append(append(append(b, '+'), v...), '\r', '\n')
	case replyErr:
		return appendError(b, string(v))
	case int64:
		return append(strconv.AppendInt(append(b, ':'), v, 10), '\r', '\n')
	case string:
		b = append(strconv.AppendInt(append(b, '$'), int64(len(v)), 10), '\r', '\n')
		return append(append(b, v...), '\r', '\n')
	case []any:
		b = append(strconv.AppendInt(append(b, '*'), int64(len(v)), 10), '\r', '\n')
		for _, e := range v {
			b = appendValue(b, e)
		}
		return b
	}
	return appendError(b, "ERR internal: unknown reply")
}
