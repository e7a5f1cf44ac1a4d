package embedstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// A journal segment and a snapshot are sequences of records:
//
//	u32 body length | u32 CRC-32C of body | body
//	body: 's' | i64 deadline (Unix ms, 0: none) | uvarint key length | key | value
//	      'd' | uvarint key length | key
//	      'f'                                        (FLUSHALL)
//	      'e' | u64 record count                     (end of a snapshot)
//	      'o' | kind | i64 deadline | uvarint key length | key | entries
//	          (a whole hash or sorted set, in snapshots; entries are
//	          uvarint-length-prefixed field and value, or member then
//	          f64 score)
//	      'h' 'H' 'z' 'Z' 'x' | i64 time of the write (Unix ms) | i64 deadline |
//	          uvarint key length | key | uvarint field length | field | rest
//	          (HSET field=rest, HDEL field, ZADD member with score rest (f64),
//	          ZREM member, deadline only)
//
// A string record is the whole state of its key after a write. A field
// record is the whole state of one field (or member) and of its key's
// deadline after a write, never an increment (HINCRBY journals the sum), so
// replaying any suffix of the history that includes every write after a
// point still gives the same final state: that is what lets the snapshot be
// taken a shard at a time while writes go on (see compact.go). A field
// record carries its write's time so that replay expires the key it finds
// where the write did: a hash past its deadline when the write came was
// gone, and the write started a new one.
const (
	opSet      = 's'
	opDel      = 'd'
	opFlush    = 'f'
	opEnd      = 'e'
	opObject   = 'o'
	opHSet     = 'h'
	opHDel     = 'H'
	opZAdd     = 'z'
	opZRem     = 'Z'
	opDeadline = 'x'
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends a framed record to buf; body writes its body.
func appendRecord(buf []byte, body func([]byte) []byte) []byte {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0)
	buf = body(buf)
	b := buf[start+8:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(b)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(b, castagnoli))
	return buf
}

func appendSetRecord(buf []byte, k, v string, exp int64) []byte {
	return appendRecord(buf, func(b []byte) []byte {
		b = append(b, opSet)
		b = binary.LittleEndian.AppendUint64(b, uint64(exp))
		b = binary.AppendUvarint(b, uint64(len(k)))
		return append(append(b, k...), v...)
	})
}

func appendDelRecord(buf []byte, k string) []byte {
	return appendRecord(buf, func(b []byte) []byte {
		b = binary.AppendUvarint(append(b, opDel), uint64(len(k)))
		return append(b, k...)
	})
}

// appendFieldRecord appends a field record (op h, H, z, Z or x).
func appendFieldRecord(buf []byte, op byte, at, exp int64, k, f, rest string) []byte {
	return appendRecord(buf, func(b []byte) []byte {
		b = append(b, op)
		b = binary.LittleEndian.AppendUint64(b, uint64(at))
		b = binary.LittleEndian.AppendUint64(b, uint64(exp))
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(f)))
		return append(append(b, f...), rest...)
	})
}

// appendObjectRecord appends the whole of o, for a snapshot.
func appendObjectRecord(buf []byte, k string, o *object) []byte {
	return appendRecord(buf, func(b []byte) []byte {
		b = append(b, opObject, o.kind)
		b = binary.LittleEndian.AppendUint64(b, uint64(o.exp))
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		if o.kind == kindHash {
			for f, v := range o.hash {
				b = append(binary.AppendUvarint(b, uint64(len(f))), f...)
				b = append(binary.AppendUvarint(b, uint64(len(v))), v...)
			}
			return b
		}
		for _, m := range o.zset.order {
			b = append(binary.AppendUvarint(b, uint64(len(m.member))), m.member...)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(m.score))
		}
		return b
	})
}

func putFloat(b []byte, f float64) { binary.LittleEndian.PutUint64(b, math.Float64bits(f)) }

// decodeEntries calls f for each entry of an object record's body.
func decodeEntries(kind byte, b []byte, f func(field, val []byte, score float64)) error {
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return errMalformed
		}
		field := b[w : w+int(n)]
		b = b[w+int(n):]
		if kind == kindZset {
			if len(b) < 8 {
				return errMalformed
			}
			f(field, nil, math.Float64frombits(binary.LittleEndian.Uint64(b)))
			b = b[8:]
			continue
		}
		n, w = binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return errMalformed
		}
		f(field, b[w:w+int(n)], 0)
		b = b[w+int(n):]
	}
	return nil
}

var errMalformed = errors.New("malformed record")

// record is a decoded record; key, field and val alias the buffer read.
type record struct {
	op              byte
	kind            byte // of an object record
	key, field, val []byte
	exp, at         int64
	count           uint64
}

var (
	errTorn = errors.New("torn record")
	errEnd  = errors.New("end of records") // the zero-filled rest of a segment
)

// nextRecord decodes the record at the start of data and returns its size.
// errTorn means data ends inside the record (or its checksum fails, which a
// crash mid-append also produces); any other error is corruption.
func nextRecord(data []byte) (record, int, error) {
	if len(data) < 8 {
		return record{}, 0, errTorn
	}
	if binary.LittleEndian.Uint64(data) == 0 {
		return record{}, 0, errEnd // no record has an empty body
	}
	n := int(binary.LittleEndian.Uint32(data))
	if len(data) < 8+n {
		return record{}, 0, errTorn
	}
	b := data[8 : 8+n]
	if crc32.Checksum(b, castagnoli) != binary.LittleEndian.Uint32(data[4:]) {
		return record{}, 0, errTorn
	}
	bad := fmt.Errorf("malformed record")
	if len(b) == 0 {
		return record{}, 0, bad
	}
	r := record{op: b[0]}
	b = b[1:]
	switch r.op {
	case opSet:
		if len(b) < 8 {
			return r, 0, bad
		}
		r.exp = int64(binary.LittleEndian.Uint64(b))
		b = b[8:]
		fallthrough
	case opDel:
		kl, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < kl {
			return r, 0, bad
		}
		r.key, r.val = b[w:w+int(kl)], b[w+int(kl):]
	case opObject:
		if len(b) < 9 || (b[0] != kindHash && b[0] != kindZset) {
			return r, 0, bad
		}
		r.kind, r.exp = b[0], int64(binary.LittleEndian.Uint64(b[1:]))
		kl, w := binary.Uvarint(b[9:])
		if w <= 0 || uint64(len(b)-9-w) < kl {
			return r, 0, bad
		}
		b = b[9+w:]
		r.key, r.val = b[:kl], b[kl:]
		if decodeEntries(r.kind, r.val, func([]byte, []byte, float64) {}) != nil {
			return r, 0, bad
		}
	case opHSet, opHDel, opZAdd, opZRem, opDeadline:
		if len(b) < 16 {
			return r, 0, bad
		}
		r.at, r.exp = int64(binary.LittleEndian.Uint64(b)), int64(binary.LittleEndian.Uint64(b[8:]))
		b = b[16:]
		kl, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < kl {
			return r, 0, bad
		}
		r.key, b = b[w:w+int(kl)], b[w+int(kl):]
		fl, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < fl {
			return r, 0, bad
		}
		r.field, r.val = b[w:w+int(fl)], b[w+int(fl):]
		if r.op == opZAdd && len(r.val) != 8 {
			return r, 0, bad
		}
	case opFlush:
	case opEnd:
		if len(b) < 8 {
			return r, 0, bad
		}
		r.count = binary.LittleEndian.Uint64(b)
	default:
		return r, 0, bad
	}
	return r, 8 + n, nil
}
