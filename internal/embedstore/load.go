package embedstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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
	for i, n := range segs {
		if n < base {
			os.Remove(segmentName(dir, n))
			continue
		}
		size, err := s.replaySegment(n, i == len(segs)-1, now)
		if err != nil {
			return nil, err
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

// replaySegment applies segment n and returns its size. A torn record at
// the end of the last segment is a crash mid-append, before its fsync, so
// never acknowledged: it is cut off. Anywhere else it is corruption.
func (s *Store) replaySegment(n uint64, last bool, now int64) (int64, error) {
	path := segmentName(s.opts.Dir, n)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("embedstore: read journal: %w", err)
	}
	off := 0
	for off < len(data) {
		r, size, err := nextRecord(data[off:])
		if errors.Is(err, errTorn) && last {
			if err := os.Truncate(path, int64(off)); err != nil {
				return 0, fmt.Errorf("embedstore: cut torn journal tail: %w", err)
			}
			break
		}
		if err != nil {
			return 0, fmt.Errorf("embedstore: journal %s is corrupt at byte %d", path, off)
		}
		s.apply(r, now)
		off += size
	}
	return int64(off), nil
}

// apply replays one record into the keyspace, without journaling it.
func (s *Store) apply(r record, now int64) {
	switch r.op {
	case opSet:
		k := string(r.key)
		s.remove(k)
		if r.exp != 0 && r.exp <= now {
			return
		}
		s.shardOf(k).m[k] = entry{val: string(r.val), exp: r.exp}
		s.keys++
		s.bytes += int64(len(k) + len(r.val))
	case opDel:
		s.remove(string(r.key))
	case opFlush:
		for i := range s.shards {
			s.shards[i].m = map[string]entry{}
		}
		s.keys, s.bytes = 0, 0
	}
}

func (s *Store) remove(k string) {
	sh := s.shardOf(k)
	if e, ok := sh.m[k]; ok {
		s.drop(sh, k, e)
	}
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
