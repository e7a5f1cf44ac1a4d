package embedstore

import (
	"math"
	"slices"
	"strconv"
)

// The hash commands, each called with the store's lock held; see
// commandTable. Replies follow Redis 7.0, including its error texts.

func wrongArgs(name string) replyErr {
	return replyErr("ERR wrong number of arguments for '" + name + "' command")
}

// hashOf is k's hash: nil, nil when k is absent.
func (s *Store) hashOf(k string, now int64) (*object, any) {
	return s.objFor(k, kindHash, now, false)
}

// cmdHSet is HSET and HMSET (which answers OK instead of a count).
func cmdHSet(name string) func(*Store, [][]byte, int64) any {
	return func(s *Store, a [][]byte, now int64) any {
		if len(a)%2 != 0 {
			return wrongArgs(name)
		}
		k := string(a[1])
		o, err := s.objFor(k, kindHash, now, true)
		if err != nil {
			return err
		}
		n := int64(0)
		for i := 2; i < len(a); i += 2 {
			if s.putHField(k, o, string(a[i]), string(a[i+1]), now) {
				n++
			}
		}
		if name == "hmset" {
			return status("OK")
		}
		return n
	}
}

func cmdHSetNX(s *Store, a [][]byte, now int64) any {
	k, f := string(a[1]), string(a[2])
	o, err := s.objFor(k, kindHash, now, true)
	if err != nil {
		return err
	}
	if _, had := o.hash[f]; had {
		return int64(0)
	}
	s.putHField(k, o, f, string(a[3]), now)
	return int64(1)
}

func cmdHGet(s *Store, a [][]byte, now int64) any {
	o, err := s.hashOf(string(a[1]), now)
	if err != nil || o == nil {
		return err
	}
	if v, ok := o.hash[string(a[2])]; ok {
		return v
	}
	return nil
}

func cmdHMGet(s *Store, a [][]byte, now int64) any {
	o, err := s.hashOf(string(a[1]), now)
	if err != nil {
		return err
	}
	out := make([]any, len(a)-2)
	if o != nil {
		for i, f := range a[2:] {
			if v, ok := o.hash[string(f)]; ok {
				out[i] = v
			}
		}
	}
	return out
}

func cmdHDel(s *Store, a [][]byte, now int64) any {
	k := string(a[1])
	o, err := s.hashOf(k, now)
	if err != nil || o == nil {
		return zeroOr(err)
	}
	n := int64(0)
	for _, f := range a[2:] {
		if len(o.hash) == 0 {
			break // the key went with its last field
		}
		if s.delHField(k, o, string(f), now) {
			n++
		}
	}
	return n
}

// zeroOr is err, or 0 when err is nil (a command on a missing key).
func zeroOr(err any) any {
	if err != nil {
		return err
	}
	return int64(0)
}

// sortedFields are o's fields in byte order, so that a reply does not
// change between calls (Redis answers small hashes in insertion order,
// which no client may rely on).
func sortedFields(o *object) []string {
	fs := make([]string, 0, len(o.hash))
	for f := range o.hash {
		fs = append(fs, f)
	}
	slices.Sort(fs)
	return fs
}

// cmdHGetAll is HGETALL, HKEYS and HVALS.
func cmdHGetAll(keys, vals bool) func(*Store, [][]byte, int64) any {
	return func(s *Store, a [][]byte, now int64) any {
		o, err := s.hashOf(string(a[1]), now)
		if err != nil {
			return err
		}
		out := []any{}
		if o == nil {
			return out
		}
		for _, f := range sortedFields(o) {
			if keys {
				out = append(out, f)
			}
			if vals {
				out = append(out, o.hash[f])
			}
		}
		return out
	}
}

func cmdHExists(s *Store, a [][]byte, now int64) any {
	o, err := s.hashOf(string(a[1]), now)
	if err != nil || o == nil {
		return zeroOr(err)
	}
	if _, ok := o.hash[string(a[2])]; ok {
		return int64(1)
	}
	return int64(0)
}

func cmdHLen(s *Store, a [][]byte, now int64) any {
	o, err := s.hashOf(string(a[1]), now)
	if err != nil || o == nil {
		return zeroOr(err)
	}
	return int64(len(o.hash))
}

func cmdHStrlen(s *Store, a [][]byte, now int64) any {
	o, err := s.hashOf(string(a[1]), now)
	if err != nil || o == nil {
		return zeroOr(err)
	}
	return int64(len(o.hash[string(a[2])]))
}

// cmdHIncrBy journals the new value of the field, not the increment (see
// record.go).
func cmdHIncrBy(s *Store, a [][]byte, now int64) any {
	by, perr := strconv.ParseInt(string(a[3]), 10, 64)
	if perr != nil {
		return errNotInt
	}
	k, f := string(a[1]), string(a[2])
	o, err := s.objFor(k, kindHash, now, false)
	if err != nil {
		return err
	}
	cur := int64(0)
	if o != nil {
		if v, ok := o.hash[f]; ok {
			n, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil {
				return replyErr("ERR hash value is not an integer")
			}
			cur = n
		}
	}
	if by > 0 && cur > math.MaxInt64-by || by < 0 && cur < math.MinInt64-by {
		return replyErr("ERR increment or decrement would overflow")
	}
	if o == nil {
		o = s.newObj(k, kindHash)
	}
	cur += by
	s.putHField(k, o, f, strconv.FormatInt(cur, 10), now)
	return cur
}
