package embedstore

import (
	"slices"
	"strconv"
	"strings"
)

// The commands on keys and the server's own, each called with the store's
// lock held; see commandTable.

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

// getString is k's string value; a hash or sorted set there is
// errWrongType.
func (s *Store) getString(k string, now int64) (entry, bool, any) {
	if s.objOf(k, now) != nil {
		return entry{}, false, errWrongType
	}
	e, ok := s.lookup(k, now)
	return e, ok, nil
}

func cmdGet(s *Store, a [][]byte, now int64) any {
	e, ok, err := s.getString(string(a[1]), now)
	switch {
	case err != nil:
		return err
	case ok:
		return e.val
	}
	return nil
}

// cmdMGet answers null for a key that is not a string, as Redis does.
func cmdMGet(s *Store, a [][]byte, now int64) any {
	out := make([]any, len(a)-1)
	for i, k := range a[1:] {
		if e, ok := s.lookup(string(k), now); ok {
			out[i] = e.val
		}
	}
	return out
}

func cmdExists(s *Store, a [][]byte, now int64) any {
	n := int64(0)
	for _, k := range a[1:] {
		if kind, _ := s.kindOf(string(k), now); kind != 0 {
			n++
		}
	}
	return n
}

func cmdType(s *Store, a [][]byte, now int64) any {
	switch kind, _ := s.kindOf(string(a[1]), now); kind {
	case kindString:
		return status("string")
	case kindHash:
		return status("hash")
	case kindZset:
		return status("zset")
	}
	return status("none")
}

func cmdStrlen(s *Store, a [][]byte, now int64) any {
	e, _, err := s.getString(string(a[1]), now)
	if err != nil {
		return err
	}
	return int64(len(e.val))
}

func cmdTTL(unit int64) func(*Store, [][]byte, int64) any {
	return func(s *Store, a [][]byte, now int64) any {
		kind, exp := s.kindOf(string(a[1]), now)
		switch {
		case kind == 0:
			return int64(-2)
		case exp == 0:
			return int64(-1)
		}
		return (exp - now + unit/2) / unit
	}
}

func cmdKeys(s *Store, a [][]byte, now int64) any {
	pat := string(a[1])
	var out []string
	for i := range s.shards {
		s.shards[i].each(func(k, _ []byte, exp int64) bool {
			if exp == 0 || exp > now {
				if globMatch(pat, string(k)) {
					out = append(out, string(k))
				}
			}
			return true
		})
		for k, o := range s.shards[i].objs {
			if o.exp == 0 || o.exp > now {
				if globMatch(pat, k) {
					out = append(out, k)
				}
			}
		}
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
	pat, typ := "*", ""
	for i := 2; i+1 < len(a); i += 2 {
		switch {
		case strings.EqualFold(string(a[i]), "match"):
			pat = string(a[i+1])
		case strings.EqualFold(string(a[i]), "type"):
			typ = strings.ToLower(string(a[i+1]))
		}
	}
	keys := cmdKeys(s, [][]byte{nil, []byte(pat)}, now).([]any)
	if typ != "" {
		keys = slices.DeleteFunc(keys, func(k any) bool {
			return cmdType(s, [][]byte{nil, []byte(k.(string))}, now) != status(typ)
		})
	}
	return []any{"0", keys}
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
	} else if o := s.objOf(k, now); o != nil {
		if get {
			return errWrongType
		}
		had, old.exp = true, o.exp
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
	if kind, _ := s.kindOf(string(a[1]), now); kind != 0 {
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
	e, ok, err := s.getString(string(a[1]), now)
	if err != nil {
		return err
	}
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
		exp := now + n*unit
		if o := s.objOf(k, now); o != nil {
			if exp <= now {
				s.del(k, now)
			} else {
				s.setObjDeadline(k, o, exp, now)
			}
			return int64(1)
		}
		e, ok := s.lookup(k, now)
		if !ok {
			return int64(0)
		}
		e.exp = exp
		s.setOrDrop(k, e, now)
		return int64(1)
	}
}

func cmdPersist(s *Store, a [][]byte, now int64) any {
	k := string(a[1])
	if o := s.objOf(k, now); o != nil {
		if o.exp == 0 {
			return int64(0)
		}
		s.setObjDeadline(k, o, 0, now)
		return int64(1)
	}
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
		e, _, werr := s.getString(k, now)
		if werr != nil {
			return werr
		}
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
