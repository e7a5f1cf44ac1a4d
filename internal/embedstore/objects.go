package embedstore

import (
	"math"
	"slices"
	"sort"
	"strconv"
)

// Hashes and sorted sets ("objects") live outside the shard's arena, in a
// per-shard map of Go values: they are few (the business registry's records,
// index, phone map and change log; per-minute counters) and each changes a
// field at a time, which an append-only arena record would copy whole. The
// cost is that the garbage collector scans them, as it would any Go map:
// fine for thousands of keys and tens of thousands of fields, not meant for
// a million hashes (strings stay in the arena). docs/embedded-store.md has
// the numbers.
//
// A key is either a string (in the arena) or an object (in objs), never
// both.
type object struct {
	kind byte  // kindHash or kindZset
	exp  int64 // deadline, Unix ms; 0: none
	hash map[string]string
	zset *zset
	size int64 // bytes of fields and values, as counted in Store.bytes
}

const (
	kindString = 's'
	kindHash   = 'h'
	kindZset   = 'z'
)

func newObject(kind byte) *object {
	o := &object{kind: kind}
	if kind == kindHash {
		o.hash = map[string]string{}
	} else {
		o.zset = &zset{scores: map[string]float64{}}
	}
	return o
}

func (o *object) len() int {
	if o.kind == kindHash {
		return len(o.hash)
	}
	return len(o.zset.order)
}

// A zset is a map from member to score plus the members in (score, member)
// order in a slice: ZSCORE is a map lookup, a rank is an index, a range is
// a binary search then a walk. An insert or removal moves the tail of the
// slice: at the registry's change log size (10,000 members) that is a
// 240 KB memmove, tens of microseconds. A zset of millions of members would
// want a skip list or B-tree; nothing stores one.
type zset struct {
	scores map[string]float64
	order  []zmember
}

type zmember struct {
	score  float64
	member string
}

func zless(a, b zmember) bool {
	return a.score < b.score || a.score == b.score && a.member < b.member
}

// rank is where m is, or would go, in order.
func (z *zset) rank(m zmember) int {
	return sort.Search(len(z.order), func(i int) bool { return !zless(z.order[i], m) })
}

// set gives member its score; it returns whether the member is new.
func (z *zset) set(member string, score float64) bool {
	old, had := z.scores[member]
	if had {
		if old == score {
			return false
		}
		i := z.rank(zmember{old, member})
		z.order = slices.Delete(z.order, i, i+1)
	}
	z.scores[member] = score
	m := zmember{score, member}
	z.order = slices.Insert(z.order, z.rank(m), m)
	return !had
}

func (z *zset) remove(member string) bool {
	old, had := z.scores[member]
	if !had {
		return false
	}
	delete(z.scores, member)
	i := z.rank(zmember{old, member})
	z.order = slices.Delete(z.order, i, i+1)
	return true
}

// formatScore writes a score as Redis 7.0 does (%.17g; inf, -inf).
func formatScore(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case f == 0:
		return "0"
	}
	return strconv.FormatFloat(f, 'g', 17, 64)
}

// The keyspace operations on objects, with the store's lock held.

// objOf returns k's object if k holds one, deleting it if its deadline has
// passed. A string k gives nil.
func (s *Store) objOf(k string, now int64) *object {
	if s.objects == 0 {
		return nil // the common case: a string command, and no object anywhere
	}
	sh, h := s.shardOf(k)
	o := sh.objs[k]
	if o == nil {
		return nil
	}
	if o.exp != 0 && o.exp <= now {
		s.drop(sh, h, k)
		s.expired++
		return nil
	}
	return o
}

// kindOf is what k holds now (0: nothing) and its deadline.
func (s *Store) kindOf(k string, now int64) (byte, int64) {
	if o := s.objOf(k, now); o != nil {
		return o.kind, o.exp
	}
	if e, ok := s.lookup(k, now); ok {
		return kindString, e.exp
	}
	return 0, 0
}

// objFor returns k's object of kind, creating it (not journaled: the first
// field record creates it on replay) when create is set and k is absent.
// It answers errWrongType when k holds something else, and nil, nil when k
// is absent and create is not set.
func (s *Store) objFor(k string, kind byte, now int64, create bool) (*object, any) {
	if o := s.objOf(k, now); o != nil {
		if o.kind != kind {
			return nil, errWrongType
		}
		return o, nil
	}
	if _, ok := s.lookup(k, now); ok {
		return nil, errWrongType
	}
	if !create {
		return nil, nil
	}
	return s.newObj(k, kind), nil
}

// newObj adds an empty object at k, replacing a string there. Not
// journaled.
func (s *Store) newObj(k string, kind byte) *object {
	sh, h := s.shardOf(k)
	s.drop(sh, h, k)
	if sh.objs == nil {
		sh.objs = map[string]*object{}
	}
	o := newObject(kind)
	sh.objs[k] = o
	s.objects++
	s.keys++
	s.bytes += int64(len(k))
	return o
}

func (s *Store) grow(o *object, n int64) {
	o.size += n
	s.bytes += n
}

// hset sets field f of hash o and reports whether f is new. Not journaled.
func (s *Store) hset(o *object, f, v string) bool {
	old, had := o.hash[f]
	o.hash[f] = v
	if had {
		s.grow(o, int64(len(v)-len(old)))
	} else {
		s.grow(o, int64(len(f)+len(v)))
	}
	return !had
}

// hdel removes field f of hash o. Not journaled; the caller drops an
// emptied key.
func (s *Store) hdel(o *object, f string) bool {
	old, had := o.hash[f]
	if had {
		delete(o.hash, f)
		s.grow(o, -int64(len(f)+len(old)))
	}
	return had
}

func (s *Store) zput(o *object, m string, score float64) bool {
	added := o.zset.set(m, score)
	if added {
		s.grow(o, int64(len(m)+8))
	}
	return added
}

func (s *Store) zrem(o *object, m string) bool {
	removed := o.zset.remove(m)
	if removed {
		s.grow(o, -int64(len(m)+8))
	}
	return removed
}

// The journaled forms, for commands.

func (s *Store) putHField(k string, o *object, f, v string, now int64) bool {
	added := s.hset(o, f, v)
	s.j.appendField(opHSet, now, o.exp, k, f, v)
	return added
}

func (s *Store) delHField(k string, o *object, f string, now int64) bool {
	if !s.hdel(o, f) {
		return false
	}
	s.j.appendField(opHDel, now, o.exp, k, f, "")
	s.dropIfEmpty(k, o)
	return true
}

func (s *Store) putZMember(k string, o *object, m string, score float64, now int64) bool {
	added := s.zput(o, m, score)
	var b [8]byte
	putFloat(b[:], score)
	s.j.appendField(opZAdd, now, o.exp, k, m, string(b[:]))
	return added
}

func (s *Store) delZMember(k string, o *object, m string, now int64) bool {
	if !s.zrem(o, m) {
		return false
	}
	s.j.appendField(opZRem, now, o.exp, k, m, "")
	s.dropIfEmpty(k, o)
	return true
}

// setObjDeadline changes an object's deadline (EXPIRE, PERSIST).
func (s *Store) setObjDeadline(k string, o *object, exp, now int64) {
	o.exp = exp
	s.j.appendField(opDeadline, now, exp, k, "", "")
}

// dropIfEmpty deletes k once its object has no field left, as Redis does.
// Not journaled: replaying the removal of the last field empties it too.
func (s *Store) dropIfEmpty(k string, o *object) {
	if o.len() == 0 {
		sh, h := s.shardOf(k)
		s.drop(sh, h, k)
	}
}
