package embedstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A journal segment and a snapshot are sequences of records:
//
//	u32 body length | u32 CRC-32C of body | body
//	body: 's' | i64 deadline (Unix ms, 0: none) | uvarint key length | key | value
//	      'd' | uvarint key length | key
//	      'f'                                        (FLUSHALL)
//	      'e' | u64 record count                     (end of a snapshot)
//
// Each record is the whole state of its key after a write, never a delta,
// so replaying any suffix of the history that includes every write after a
// point gives the same final state: that is what lets the snapshot be taken
// a shard at a time while writes go on (see compact.go).
const (
	opSet   = 's'
	opDel   = 'd'
	opFlush = 'f'
	opEnd   = 'e'
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

// record is a decoded record; key and val alias the buffer read.
type record struct {
	op       byte
	key, val []byte
	exp      int64
	count    uint64
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
