package embedstore

import (
	"encoding/binary"
	"unsafe"
)

// A shard holds its keys and values in one byte slice, indexed by a map
// from the key's 64-bit hash to the record's offset. Neither holds a
// pointer, so the garbage collector never scans the keyspace: with a
// million keys held as Go strings in a map, marking them took about half
// the process's CPU under load (BENCHMARKS.md, "Embedded store").
//
// A record is: i64 deadline (Unix ms, 0: none) | u32 key length |
// u32 value length | key | value. An overwrite appends a new record and
// leaves the old one as garbage; the shard rewrites its arena when garbage
// passes half of it (a shard is small, so that is a bounded step). The rare
// key whose hash equals another key's lives in coll.
type shard struct {
	idx     map[uint64]uint32 // hash → offset in arena
	arena   []byte
	garbage int
	coll    map[string]entry   // keys whose hash another key already has
	objs    map[string]*object // hashes and sorted sets (objects.go)
}

type entry struct {
	val string
	exp int64 // deadline, Unix ms; 0: none
}

const recHeader = 16

func newShard() shard { return shard{idx: map[uint64]uint32{}} }

func (sh *shard) len() int { return len(sh.idx) + len(sh.coll) + len(sh.objs) }

// at decodes the record at off; key and val alias the arena.
func (sh *shard) at(off uint32) (key, val []byte, exp int64) {
	r := sh.arena[off:]
	exp = int64(binary.LittleEndian.Uint64(r))
	kl := binary.LittleEndian.Uint32(r[8:])
	vl := binary.LittleEndian.Uint32(r[12:])
	key = r[recHeader : recHeader+kl]
	val = r[recHeader+kl : recHeader+kl+vl]
	return key, val, exp
}

func recSize(kl, vl int) int { return recHeader + kl + vl }

// get finds k (hash h). The value aliases the arena: copy it before the
// shard changes.
func (sh *shard) get(h uint64, k string) (val []byte, exp int64, ok bool) {
	if off, found := sh.idx[h]; found {
		if key, v, e := sh.at(off); string(key) == k {
			return v, e, true
		}
	}
	if e, found := sh.coll[k]; found {
		return unsafe.Slice(unsafe.StringData(e.val), len(e.val)), e.exp, true
	}
	return nil, 0, false
}

// set stores k; it returns whether k is new and, if not, the length of
// the value it replaced.
func (sh *shard) set(h uint64, k, v string, exp int64) (added bool, oldLen int) {
	if off, found := sh.idx[h]; found {
		key, old, _ := sh.at(off)
		if string(key) != k {
			o, had := sh.coll[k]
			if sh.coll == nil {
				sh.coll = map[string]entry{}
			}
			sh.coll[k] = entry{val: v, exp: exp}
			return !had, len(o.val)
		}
		oldLen = len(old)
		sh.garbage += recSize(len(key), len(old))
		sh.idx[h] = sh.append(k, v, exp)
		sh.maybeRewrite()
		return false, oldLen
	}
	if o, had := sh.coll[k]; had {
		sh.coll[k] = entry{val: v, exp: exp}
		return false, len(o.val)
	}
	sh.idx[h] = sh.append(k, v, exp)
	return true, 0
}

// remove deletes k and returns the length of its value.
func (sh *shard) remove(h uint64, k string) (removed bool, oldLen int) {
	if off, found := sh.idx[h]; found {
		if key, v, _ := sh.at(off); string(key) == k {
			delete(sh.idx, h)
			sh.garbage += recSize(len(key), len(v))
			sh.maybeRewrite()
			return true, len(v)
		}
	}
	if o, had := sh.coll[k]; had {
		delete(sh.coll, k)
		return true, len(o.val)
	}
	return false, 0
}

func (sh *shard) append(k, v string, exp int64) uint32 {
	off := len(sh.arena)
	sh.arena = binary.LittleEndian.AppendUint64(sh.arena, uint64(exp))
	sh.arena = binary.LittleEndian.AppendUint32(sh.arena, uint32(len(k)))
	sh.arena = binary.LittleEndian.AppendUint32(sh.arena, uint32(len(v)))
	sh.arena = append(append(sh.arena, k...), v...)
	return uint32(off)
}

// maybeRewrite copies the live records into a new arena once garbage is
// over half of it.
func (sh *shard) maybeRewrite() {
	if sh.garbage < 64<<10 || sh.garbage < len(sh.arena)/2 {
		return
	}
	old := sh.arena
	sh.arena = make([]byte, 0, len(old)-sh.garbage+len(old)/8)
	for h, off := range sh.idx {
		r := old[off:]
		n := recSize(int(binary.LittleEndian.Uint32(r[8:])), int(binary.LittleEndian.Uint32(r[12:])))
		sh.idx[h] = uint32(len(sh.arena))
		sh.arena = append(sh.arena, r[:n]...)
	}
	sh.garbage = 0
}

// each calls f for every key of the shard until f returns false. f must
// not change the shard; key and val alias it.
func (sh *shard) each(f func(key, val []byte, exp int64) bool) {
	for _, off := range sh.idx {
		if k, v, e := sh.at(off); !f(k, v, e) {
			return
		}
	}
	for k, e := range sh.coll {
		if !f([]byte(k), []byte(e.val), e.exp) {
			return
		}
	}
}
