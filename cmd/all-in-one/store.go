package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// The embedded store is miniredis (a Redis-compatible server in the process,
// with Lua) plus a journal that makes it durable, which miniredis is not:
// after every write command the state of the keys it wrote is appended to
// journalName and fsynced before the caller sees the command succeed. So
// ingest's "200 only after the context is durably written" and the sender's
// ledger hold across a crash, not only a clean restart. At start the journal
// is replayed and rewritten compactly; it is compacted again when it grows.
//
// Only writes made through Client are journaled: it is the one client the
// process uses. Only string keys are kept, which is all the pipeline stores.

const (
	journalName        = "redis.journal"
	journalCompactSize = 16 << 20 // compact when the journal passes this…
	journalGrowth      = 4        // …and is this many times its compacted size
)

// record is one journal line: the state of key after a write.
type record struct {
	Key      string `json:"k"`
	Value    []byte `json:"v,omitempty"`
	ExpireMS int64  `json:"x,omitempty"` // Unix ms; 0: no expiry
	Deleted  bool   `json:"d,omitempty"`
}

// embeddedStore is a miniredis whose writes are journaled to dir.
type embeddedStore struct {
	m    *miniredis.Miniredis
	path string

	// Lock order: syncMu, then mu. mu guards appends; syncMu serializes
	// fsyncs, so that writers arriving while one fsyncs share the next one
	// (group commit) instead of queueing one fsync each.
	mu        sync.Mutex
	f         *os.File
	size      int64 // bytes in the journal
	compacted int64 // its size after the last compaction
	written   int64 // appends so far

	syncMu sync.Mutex
	synced int64 // appends known to be on disk
}

// openStore loads dir's journal into a new miniredis listening on
// 127.0.0.1 (a free port) and opens the journal for appending.
func openStore(dir string) (*embeddedStore, error) {
	m := miniredis.NewMiniRedis()
	// Without this, miniredis TTLs only move with FastForward: contexts and
	// ledger entries would never expire.
	m.ClockTTL(true)
	s := &embeddedStore{m: m, path: filepath.Join(dir, journalName)}
	if err := s.load(); err != nil {
		return nil, err
	}
	if err := s.compact(); err != nil {
		return nil, err
	}
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		s.f.Close()
		return nil, fmt.Errorf("store: start: %w", err)
	}
	return s, nil
}

// Addr is the host:port the store listens on.
func (s *embeddedStore) Addr() string { return s.m.Addr() }

// Keys is the number of keys held.
func (s *embeddedStore) Keys() int { return len(s.m.Keys()) }

// Client returns a client of the store that journals its writes.
func (s *embeddedStore) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.m.Addr()})
	c.AddHook(journalHook{s})
	return c
}

// Close stops the server and leaves a compact journal behind.
func (s *embeddedStore) Close() error {
	s.m.Close()
	err := s.compact()
	s.mu.Lock()
	defer s.mu.Unlock()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// load replays the journal: the last record of each key wins. A torn last
// line (a crash mid-append, before its fsync, so never acknowledged) is
// ignored; a bad line elsewhere means the file is not ours to guess about.
func (s *embeddedStore) load() error {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: read journal: %w", err)
	}
	state := map[string]record{}
	for n, line := 1, []byte(nil); len(data) > 0; n++ {
		line, data, _ = bytes.Cut(data, []byte("\n"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			if len(bytes.TrimSpace(data)) == 0 {
				break
			}
			return fmt.Errorf("store: journal %s line %d is corrupt", s.path, n)
		}
		state[r.Key] = r
	}
	now := time.Now()
	for k, r := range state {
		if r.Deleted {
			continue
		}
		var ttl time.Duration
		if r.ExpireMS > 0 {
			if ttl = time.UnixMilli(r.ExpireMS).Sub(now); ttl <= 0 {
				continue
			}
		}
		if err := s.m.Set(k, string(r.Value)); err != nil {
			return fmt.Errorf("store: load: %w", err)
		}
		if ttl > 0 {
			s.m.SetTTL(k, ttl)
		}
	}
	return nil
}

// compact rewrites the journal with one record per live key. Everything
// appended before is then on disk, in the new file.
func (s *embeddedStore) compact() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rewrite(); err != nil {
		return err
	}
	s.synced = s.written
	return nil
}

// rewrite does compact's work, with both locks held.
func (s *embeddedStore) rewrite() error {
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("store: compact: %w", err)
	}
	w := bufio.NewWriter(f)
	for _, k := range s.m.Keys() {
		if r, ok := s.state(k); ok && !r.Deleted {
			b, _ := json.Marshal(r)
			w.Write(append(b, '\n'))
		}
	}
	err = errors.Join(w.Flush(), f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(s.path))
	}
	if err != nil {
		return fmt.Errorf("store: compact: %w", err)
	}
	if s.f != nil {
		s.f.Close()
	}
	if s.f, err = os.OpenFile(s.path, os.O_APPEND|os.O_WRONLY, 0o600); err != nil {
		return fmt.Errorf("store: open journal: %w", err)
	}
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("store: open journal: %w", err)
	}
	s.size, s.compacted = fi.Size(), fi.Size()
	return nil
}

// state reads key's current state from miniredis. Keys of other types than
// string are not kept (nothing in the pipeline writes them).
func (s *embeddedStore) state(k string) (record, bool) {
	if !s.m.Exists(k) {
		return record{Key: k, Deleted: true}, true
	}
	if s.m.Type(k) != "string" {
		return record{}, false
	}
	v, err := s.m.Get(k)
	if err != nil {
		return record{Key: k, Deleted: true}, true // gone meanwhile
	}
	r := record{Key: k, Value: []byte(v)}
	if ttl := s.m.TTL(k); ttl > 0 {
		r.ExpireMS = time.Now().Add(ttl).UnixMilli()
	}
	return r, true
}

// persist journals the current state of keys and returns once it is on
// disk. The state is read under mu, so records land in the order they were
// read and the last record of a key is never older than its last write.
func (s *embeddedStore) persist(keys []string, all bool) error {
	if all {
		return s.compact()
	}
	seq, err := s.appendState(keys)
	if err != nil || seq == 0 {
		return err
	}
	s.syncMu.Lock()
	if s.synced < seq {
		s.mu.Lock()
		f, target := s.f, s.written
		s.mu.Unlock()
		if err = f.Sync(); err == nil {
			s.synced = target
		}
	}
	s.syncMu.Unlock()
	if err != nil {
		return fmt.Errorf("store: journal: %w", err)
	}
	s.mu.Lock()
	grown := s.size > journalCompactSize && s.size > journalGrowth*s.compacted
	s.mu.Unlock()
	if grown {
		return s.compact()
	}
	return nil
}

// appendState appends the records of keys and returns the append's
// sequence number (0 when there was nothing to write).
func (s *embeddedStore) appendState(keys []string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf bytes.Buffer
	for _, k := range keys {
		if r, ok := s.state(k); ok {
			b, _ := json.Marshal(r)
			buf.Write(append(b, '\n'))
		}
	}
	if buf.Len() == 0 {
		return 0, nil
	}
	n, err := s.f.Write(buf.Bytes())
	s.size += int64(n)
	if err != nil {
		return 0, fmt.Errorf("store: journal: %w", err)
	}
	s.written++
	return s.written, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
