package embedstore

import (
	"path"
	"slices"
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
)

type command struct {
	fn    func(s *Store, args [][]byte, now int64) any
	arity int  // number of args including the name; negative: at least -arity
	write bool // changes keys (not allowed in EVAL_RO)
}

// commandTable is the commands the services send (docs/embedded-store.md
// lists them), plus a few that help a person poke at the store with
// redis-cli. It is built per Store, not as a package variable, because
// EVAL refers back to it.
func commandTable() map[string]command {
	return map[string]command{
		"ping":       {fn: cmdPing, arity: -1},
		"echo":       {fn: func(_ *Store, a [][]byte, _ int64) any { return string(a[1]) }, arity: 2},
		"quit":       {fn: func(*Store, [][]byte, int64) any { return status("OK") }, arity: -1},
		"select":     {fn: cmdSelect, arity: 2},
		"client":     {fn: func(*Store, [][]byte, int64) any { return status("OK") }, arity: -2},
		"command":    {fn: func(*Store, [][]byte, int64) any { return []any{} }, arity: -1},
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

func clip(s string) string {
	if len(s) > 32 {
		return s[:32]
	}
	return s
}

func cmdPing(_ *Store, a [][]byte, _ int64) any {
	if len(a) > 1 {
		return string(a[1])
	}
	return status("PONG")
}

func cmdSelect(_ *Store, a [][]byte, _ int64) any {
	if string(a[1]) != "0" {
		return replyErr("ERR DB index is out of range")
	}
	return status("OK")
}

func cmdInfo(s *Store, _ [][]byte, _ int64) any {
	return "# Server\r\nredis_version:7.0.0\r\nembedded:ctmpipe\r\n# Memory\r\nused_memory:" +
		strconv.FormatInt(s.bytes, 10) + "\r\n# Keyspace\r\ndb0:keys=" + strconv.Itoa(s.keys) + "\r\n"
}

func cmdGet(s *Store, a [][]byte, now int64) any {
	if e, ok := s.lookup(string(a[1]), now); ok {
		return e.val
	}
	return nil
}

func cmdMGet(s *Store, a [][]byte, now int64) any {
	out := make([]any, len(a)-1)
	for i, k := range a[1:] {
		out[i] = cmdGet(s, [][]byte{nil, k}, now)
	}
	return out
}

func cmdExists(s *Store, a [][]byte, now int64) any {
	n := int64(0)
	for _, k := range a[1:] {
		if _, ok := s.lookup(string(k), now); ok {
			n++
		}
	}
	return n
}

func cmdType(s *Store, a [][]byte, now int64) any {
	if _, ok := s.lookup(string(a[1]), now); ok {
		return status("string")
	}
	return status("none")
}

func cmdStrlen(s *Store, a [][]byte, now int64) any {
	e, _ := s.lookup(string(a[1]), now)
	return int64(len(e.val))
}

func cmdTTL(unit int64) func(*Store, [][]byte, int64) any {
	return func(s *Store, a [][]byte, now int64) any {
		e, ok := s.lookup(string(a[1]), now)
		switch {
		case !ok:
			return int64(-2)
		case e.exp == 0:
			return int64(-1)
		}
		return (e.exp - now + unit/2) / unit
	}
}

func cmdKeys(s *Store, a [][]byte, now int64) any {
	pat := string(a[1])
	var out []string
	for i := range s.shards {
		s.shards[i].each(func(k, _ []byte, exp int64) bool {
			if exp == 0 || exp > now {
				if ok, _ := path.Match(pat, string(k)); ok {
					out = append(out, string(k))
				}
			}
			return true
		})
	}
	slices.Sort(out)
	res := make([]any, len(out))
	for i, k := range out {
		res[i] = k
	}
	return res
}

// cmdScan answers in one step (cursor 0 back): the store is for one
// machine, and SCAN is only there for redis-cli --scan.
func cmdScan(s *Store, a [][]byte, now int64) any {
	pat := "*"
	for i := 2; i+1 < len(a); i += 2 {
		if strings.EqualFold(string(a[i]), "match") {
			pat = string(a[i+1])
		}
	}
	return []any{"0", cmdKeys(s, [][]byte{nil, []byte(pat)}, now)}
}

// cmdSet is SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL].
func cmdSet(s *Store, a [][]byte, now int64) any {
	k, v := string(a[1]), string(a[2])
	var nx, xx, get, keep bool
	exp := int64(0)
	for i := 3; i < len(a); i++ {
		opt := strings.ToLower(string(a[i]))
		switch opt {
		case "nx":
			nx = true
		case "xx":
			xx = true
		case "get":
			get = true
		case "keepttl":
			keep = true
		case "ex", "px", "exat", "pxat":
			if i+1 >= len(a) || exp != 0 {
				return errSyntax
			}
			i++
			n, err := strconv.ParseInt(string(a[i]), 10, 64)
			if err != nil {
				return errNotInt
			}
			if n <= 0 {
				return errExpire
			}
			switch opt {
			case "ex":
				exp = now + n*1000
			case "px":
				exp = now + n
			case "exat":
				exp = n * 1000
			case "pxat":
				exp = n
			}
		default:
			return errSyntax
		}
	}
	if (nx && xx) || (keep && exp != 0) {
		return errSyntax
	}
	old, had := s.lookup(k, now)
	var prev any
	if had {
		prev = old.val
	}
	if (nx && had) || (xx && !had) {
		if get {
			return prev
		}
		return nil
	}
	if keep && had {
		exp = old.exp
	}
	s.setOrDrop(k, entry{val: v, exp: exp}, now)
	if get {
		return prev
	}
	return status("OK")
}

// setOrDrop stores e, or deletes k if e's deadline has already passed
// (SET with EXAT in the past, as Redis does).
func (s *Store) setOrDrop(k string, e entry, now int64) {
	if e.exp != 0 && e.exp <= now {
		s.del(k, now)
		return
	}
	s.put(k, e)
}

func cmdSetNX(s *Store, a [][]byte, now int64) any {
	if _, ok := s.lookup(string(a[1]), now); ok {
		return int64(0)
	}
	s.put(string(a[1]), entry{val: string(a[2])})
	return int64(1)
}

func cmdSetEx(unit int64) func(*Store, [][]byte, int64) any {
	return func(s *Store, a [][]byte, now int64) any {
		n, err := strconv.ParseInt(string(a[2]), 10, 64)
		if err != nil {
			return errNotInt
		}
		if n <= 0 {
			return replyErr("ERR invalid expire time")
		}
		s.put(string(a[1]), entry{val: string(a[3]), exp: now + n*unit})
		return status("OK")
	}
}

func cmdMSet(s *Store, a [][]byte, _ int64) any {
	if len(a)%2 != 1 {
		return replyErr("ERR wrong number of arguments for 'mset' command")
	}
	for i := 1; i < len(a); i += 2 {
		s.put(string(a[i]), entry{val: string(a[i+1])})
	}
	return status("OK")
}

func cmdGetDel(s *Store, a [][]byte, now int64) any {
	e, ok := s.lookup(string(a[1]), now)
	if !ok {
		return nil
	}
	s.del(string(a[1]), now)
	return e.val
}

func cmdDel(s *Store, a [][]byte, now int64) any {
	n := int64(0)
	for _, k := range a[1:] {
		if s.del(string(k), now) {
			n++
		}
	}
	return n
}

func cmdExpire(unit int64) func(*Store, [][]byte, int64) any {
	return func(s *Store, a [][]byte, now int64) any {
		n, err := strconv.ParseInt(string(a[2]), 10, 64)
		if err != nil {
			return errNotInt
		}
		k := string(a[1])
		e, ok := s.lookup(k, now)
		if !ok {
			return int64(0)
		}
		e.exp = now + n*unit
		s.setOrDrop(k, e, now)
		return int64(1)
	}
}

func cmdPersist(s *Store, a [][]byte, now int64) any {
	k := string(a[1])
	e, ok := s.lookup(k, now)
	if !ok || e.exp == 0 {
		return int64(0)
	}
	e.exp = 0
	s.put(k, e)
	return int64(1)
}

func cmdIncrBy(by int64) func(*Store, [][]byte, int64) any {
	return func(s *Store, a [][]byte, now int64) any {
		by := by
		if len(a) == 3 {
			n, err := strconv.ParseInt(string(a[2]), 10, 64)
			if err != nil {
				return errNotInt
			}
			by = n
		}
		k := string(a[1])
		e, _ := s.lookup(k, now)
		cur := int64(0)
		if e.val != "" {
			n, err := strconv.ParseInt(e.val, 10, 64)
			if err != nil {
				return errNotInt
			}
			cur = n
		}
		cur += by
		e.val = strconv.FormatInt(cur, 10)
		s.put(k, e)
		return cur
	}
}

func cmdBGRewrite(s *Store, _ [][]byte, _ int64) any {
	if !s.compacting.TryLock() {
		return status("Background append only file rewriting scheduled")
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.compacting.Unlock()
		s.compact() //nolint:errcheck // as in maintain
	}()
	return status("Background append only file rewriting started")
}

func cmdFlush(s *Store, _ [][]byte, _ int64) any {
	s.flush()
	return status("OK")
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
