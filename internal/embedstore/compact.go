package embedstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"
)

// errClosing stops a compaction when the store closes; the journal still
// holds everything, so nothing is lost.
var errClosing = errors.New("embedstore: closing")

// Compact writes a snapshot of the keyspace and removes the journal
// segments it replaces, waiting for a compaction already running to end.
// Writes go on meanwhile. The store compacts by itself when its journal
// grows; this is for tests and tools.
func (s *Store) Compact() error {
	s.compacting.Lock()
	defer s.compacting.Unlock()
	return s.compact()
}

// compact does Compact's work; the caller holds s.compacting.
//
// It first rotates the journal: every write from then on lands in the new
// segment. Then it copies the keyspace a shard at a time, holding the lock
// for one shard only, into snapshot.tmp. A key written during the copy may
// be copied in either state, which is safe because records are whole
// states: replaying the snapshot and then the new segment ends every key
// at its last write. Once the snapshot is fsynced it is renamed into place
// (naming the new segment as where replay resumes) and the old segments
// are deleted. A crash before the rename leaves the old snapshot and every
// segment; after it, the new snapshot and the segments it names.
func (s *Store) compact() error {
	base, retired, err := s.j.rotate()
	if err != nil {
		return err
	}
	dir := s.opts.Dir
	tmp := filepath.Join(dir, snapshotName+".tmp")
	size, err := s.writeSnapshot(tmp, base)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, snapshotName))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
		if errors.Is(err, errClosing) {
			return err
		}
		return fmt.Errorf("embedstore: compact: %w", err)
	}
	segs, _ := listSegments(dir)
	for _, n := range segs {
		if n < base {
			os.Remove(segmentName(dir, n))
		}
	}
	if s.opts.Legacy != "" {
		os.Remove(s.opts.Legacy)
	}
	s.mu.Lock()
	s.snapBytes = size
	s.mu.Unlock()
	s.j.retire(retired)
	return nil
}

// writeSnapshot writes the live keys to path, a shard at a time.
func (s *Store) writeSnapshot(path string, base uint64) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	hdr := binary.LittleEndian.AppendUint64([]byte(snapshotMagic), base)
	w.Write(hdr)
	size := int64(len(hdr))
	var buf []byte
	var count uint64
	synced := int64(0)
	for i := range s.shards {
		select {
		case <-s.stop:
			return 0, errClosing
		default:
		}
		// Encode the shard's live keys under the lock (a shard is about a
		// thousand keys at a million), write them out after.
		buf = buf[:0]
		s.mu.Lock()
		now := s.nowMS()
		s.shards[i].each(func(k, v []byte, exp int64) bool {
			if exp == 0 || exp > now {
				buf = appendSetRecord(buf, unsafeString(k), unsafeString(v), exp)
				count++
			}
			return true
		})
		for k, o := range s.shards[i].objs {
			if o.exp == 0 || o.exp > now {
				buf = appendObjectRecord(buf, k, o)
				count++
			}
		}
		s.mu.Unlock()
		w.Write(buf)
		size += int64(len(buf))
		if size-synced > 1<<20 {
			// Sync as it goes, a megabyte at a time: one sync of the whole
			// snapshot at the end (or of big pieces) would queue the
			// journal's syncs behind seconds of writes on the same disk.
			if err := w.Flush(); err != nil {
				return 0, err
			}
			if err := f.Sync(); err != nil {
				return 0, err
			}
			synced = size
		}
		if s.afterShard != nil {
			s.afterShard(i)
		}
	}
	buf = appendRecord(buf[:0], func(b []byte) []byte {
		return binary.LittleEndian.AppendUint64(append(b, opEnd), count)
	})
	w.Write(buf)
	size += int64(len(buf))
	if err := w.Flush(); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return size, f.Close()
}

// unsafeString views b as a string for as long as b is unchanged: here,
// while the record is encoded under the lock.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
