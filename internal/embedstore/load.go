package embedstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	snapshotName  = "snapshot"
	snapshotMagic = "CTMSNAP1"
)

// load replays the snapshot and the journal segments after it into the
// keyspace, removes segments the snapshot replaced, and opens a new
// segment for appending.
func (s *Store) load() (*journal, error) {
	dir := s.opts.Dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedstore: %w", err)
	}
	os.Remove(filepath.Join(dir, snapshotName+".tmp")) // a compaction a crash interrupted
	now := s.nowMS()
	legacy := false
	_, statErr := os.Stat(filepath.Join(dir, snapshotName))
	if s.opts.Legacy != "" && statErr == nil {
		// A snapshot is only ever written after the legacy journal was
		// loaded, so it holds (and supersedes) it: a crash came between
		// the two.
		os.Remove(s.opts.Legacy)
	} else if s.opts.Legacy != "" {
		var err error
		if legacy, err = s.loadLegacy(s.opts.Legacy, now); err != nil {
			return nil, err
		}
	}
	base, err := s.loadSnapshot(now)
	if err != nil {
		return nil, err
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	next, total := base, int64(0)
	var torn string // a segment that ended in a torn record
	for _, n := range segs {
		if n < base {
			os.Remove(segmentName(dir, n))
			continue
		}
		size, wasTorn, err := s.replaySegment(n, now)
		if err != nil {
			return nil, err
		}
		if torn != "" && size > 0 {
			// Records after a torn one: not a crash mid-append.
			return nil, fmt.Errorf("embedstore: journal %s is corrupt at its end", torn)
		}
		if wasTorn {
			torn = segmentName(dir, n)
		}
		total += size
		next = n + 1
	}
	if legacy {
		total += s.opts.CompactMin + 1 // compact soon, so the legacy file can go
	}
	return openJournal(dir, next, total)
}

func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("embedstore: %w", err)
	}
	var out []uint64
	for _, e := range ents {
		if name, ok := strings.CutPrefix(e.Name(), "journal-"); ok {
			if n, err := strconv.ParseUint(name, 10, 64); err == nil {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// loadSnapshot applies the snapshot, if any, and returns the first segment
// to replay after it.
func (s *Store) loadSnapshot(now int64) (uint64, error) {
	path := filepath.Join(s.opts.Dir, snapshotName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("embedstore: read snapshot: %w", err)
	}
	if len(data) < 16 || string(data[:8]) != snapshotMagic {
		return 0, fmt.Errorf("embedstore: %s is not a snapshot", path)
	}
	base := binary.LittleEndian.Uint64(data[8:])
	var count uint64
	for off := 16; ; {
		r, n, err := nextRecord(data[off:])
		if err != nil {
			// A snapshot is renamed into place only once complete.
			return 0, fmt.Errorf("embedstore: snapshot %s is corrupt at byte %d", path, off)
		}
		off += n
		if r.op == opEnd {
			if r.count != count {
				return 0, fmt.Errorf("embedstore: snapshot %s holds %d records; its end says %d", path, count, r.count)
			}
			break
		}
		s.apply(r, now)
		count++
	}
	s.snapBytes = int64(len(data))
	return base, nil
}

// replaySegment applies segment n and returns the bytes of records in it.
// Records end at the zero-filled rest of the segment. A torn record (one
// cut short, or failing its checksum) is a crash mid-append, before its
// sync, so never acknowledged; it is ignored and reported, and load checks
// that no record follows it in a later segment.
func (s *Store) replaySegment(n uint64, now int64) (int64, bool, error) {
	path := segmentName(s.opts.Dir, n)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false, fmt.Errorf("embedstore: read journal: %w", err)
	}
	off := 0
	for off < len(data) {
		r, size, err := nextRecord(data[off:])
		switch {
		case errors.Is(err, errEnd):
			return int64(off), false, nil
		case errors.Is(err, errTorn):
			cut := min(off+8+recordLen(data[off:]), len(data))
			if !zeroFrom(data, cut) {
				return 0, false, fmt.Errorf("embedstore: journal %s is corrupt at byte %d", path, off)
			}
			// Zero it, so that the segment ends cleanly once records
			// follow in the next one.
			if err := zeroRange(path, int64(off), int64(cut-off)); err != nil {
				return 0, false, fmt.Errorf("embedstore: clear torn journal tail: %w", err)
			}
			return int64(off), true, nil
		case err != nil:
			return 0, false, fmt.Errorf("embedstore: journal %s is corrupt at byte %d", path, off)
		}
		s.apply(r, now)
		off += size
	}
	return int64(off), false, nil
}

func zeroRange(path string, off, n int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		return err
	}
	return f.Sync()
}

// recordLen is the body length a record header claims (0 if cut short).
func recordLen(data []byte) int {
	if len(data) < 8 {
		return 0
	}
	return int(binary.LittleEndian.Uint32(data))
}

// zeroFrom reports whether data holds only zeros from off: what a crash in
// the middle of the last write leaves after the torn record.
func zeroFrom(data []byte, off int) bool {
	if off < 0 || off > len(data) {
		return true
	}
	for _, b := range data[off:] {
		if b != 0 {
			return false
		}
	}
	return true
}

// apply replays one record into the keyspace, without journaling it.
func (s *Store) apply(r record, now int64) {
	switch r.op {
	case opSet:
		k := string(r.key)
		if r.exp != 0 && r.exp <= now {
			s.remove(k)
			return
		}
		s.store(k, entry{val: string(r.val), exp: r.exp})
	case opDel:
		s.remove(string(r.key))
	case opFlush:
		s.clear()
	case opObject:
		// Kept even past its deadline: a later record in the journal may
		// be the PERSIST that saved it. Lazy expiry and the sweep drop it
		// otherwise.
		k := string(r.key)
		o := s.newObj(k, r.kind)
		o.exp = r.exp
		decodeEntries(r.kind, r.val, func(f, v []byte, score float64) { //nolint:errcheck // checked when the snapshot was read
			if r.kind == kindHash {
				s.hset(o, string(f), string(v))
			} else {
				s.zput(o, string(f), score)
			}
		})
		s.dropIfEmpty(k, o)
	case opHSet, opHDel, opZAdd, opZRem, opDeadline:
		s.applyField(r)
	}
}

// applyField replays a field record as its command did: a key past its
// deadline at the write's time is gone first, then the field changes and
// the key takes the deadline it had after the write.
func (s *Store) applyField(r record) {
	k := string(r.key)
	sh, h := s.shardOf(k)
	kind := byte(kindHash)
	if r.op == opZAdd || r.op == opZRem {
		kind = kindZset
	}
	o := sh.objs[k]
	if o != nil && (o.exp != 0 && o.exp <= r.at || r.op != opDeadline && o.kind != kind) {
		s.drop(sh, h, k)
		o = nil
	}
	if o == nil {
		if r.op != opHSet && r.op != opZAdd {
			return // removing from, or expiring, what a later snapshot record or write settles
		}
		o = s.newObj(k, kind)
	}
	switch r.op {
	case opHSet:
		s.hset(o, string(r.field), string(r.val))
	case opHDel:
		s.hdel(o, string(r.field))
	case opZAdd:
		s.zput(o, string(r.field), math.Float64frombits(binary.LittleEndian.Uint64(r.val)))
	case opZRem:
		s.zrem(o, string(r.field))
	}
	o.exp = r.exp
	s.dropIfEmpty(k, o)
}

func (s *Store) remove(k string) {
	sh, h := s.shardOf(k)
	s.drop(sh, h, k)
}

// legacyRecord is a line of the all-in-one's earlier JSON journal.
type legacyRecord struct {
	Key      string `json:"k"`
	Value    []byte `json:"v,omitempty"`
	ExpireMS int64  `json:"x,omitempty"`
	Deleted  bool   `json:"d,omitempty"`
}

// loadLegacy imports the earlier JSON-lines journal at path, if present.
func (s *Store) loadLegacy(path string, now int64) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("embedstore: read %s: %w", path, err)
	}
	for n, line := 1, []byte(nil); len(data) > 0; n++ {
		line, data, _ = bytes.Cut(data, []byte("\n"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r legacyRecord
		if err := json.Unmarshal(line, &r); err != nil {
			if len(bytes.TrimSpace(data)) == 0 {
				break // torn last line: never acknowledged
			}
			return false, fmt.Errorf("embedstore: journal %s line %d is corrupt", path, n)
		}
		if r.Deleted {
			s.apply(record{op: opDel, key: []byte(r.Key)}, now)
		} else {
			s.apply(record{op: opSet, key: []byte(r.Key), val: r.Value, exp: r.ExpireMS}, now)
		}
	}
	return true, nil
}
