// Package embedstore is the all-in-one's embedded, durable, Redis-shaped
// store: a keyspace of strings, hashes and sorted sets (objects.go) with
// TTLs held in memory, served over RESP on a local port so that the
// services' go-redis clients (and their Lua scripts) use it exactly as they
// use redis-server.
//
// Every write is appended to a journal and fsynced (group commit) before its
// reply leaves the server, so an acknowledged write survives SIGKILL. Keys
// expire lazily (a read of a key past its deadline misses, and deletes it)
// and by a background sweep that visits one small shard of the keyspace per
// step, so expiry costs nothing per command and never stalls the store.
// Compaction writes a snapshot in the background, a shard at a time, while
// writes go on into a fresh journal segment. docs/embedded-store.md says why.
package embedstore

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// numShards splits the keyspace for the sweeper and the snapshot writer,
// which each hold the store's lock for one shard at a time: at a million
// keys a shard is about a thousand entries, tens of microseconds of work.
const numShards = 1024

// DefaultScriptBudget is Options.ScriptBudget's default.
const DefaultScriptBudget = time.Second

// Options configures Open. The zero value of each field but Dir is a
// sensible default.
type Options struct {
	Dir  string // directory of the snapshot and journal segments (created)
	Addr string // where to listen; default 127.0.0.1:0
	// Now is the clock TTLs are measured on. Defaults to time.Now; tests
	// pass a fake one.
	Now func() time.Time
	// SweepEvery is the interval between sweep steps (default 5ms): a full
	// pass over the keyspace takes numShards steps.
	SweepEvery time.Duration
	// CompactMin is the journal size below which no compaction starts
	// (default 64 MiB); above it, compaction starts when the journal is
	// also larger than the last snapshot.
	CompactMin int64
	// Password, when set, is required (AUTH, or HELLO with AUTH) before
	// any other command on a connection. The all-in-one always sets one;
	// only tests leave it empty.
	Password string
	// ScriptBudget bounds how long one Lua script may run (default 1s):
	// past it the script stops with an error and the store, whose lock it
	// held, serves again. It is well under ingest's STORE_TIMEOUT, so a
	// runaway script delays webhooks instead of failing them.
	ScriptBudget time.Duration
	// Legacy is a journal in the older JSON-lines format (the all-in-one's
	// DATA_DIR/redis.journal) to import at open; it is removed once a
	// snapshot holds its keys.
	Legacy string
}

// Store is an open embedded store. Its methods are safe for concurrent use.
type Store struct {
	opts Options
	now  func() time.Time
	seed maphash.Seed

	mu      sync.Mutex // guards the keyspace and the counters below
	shards  [numShards]shard
	keys    int
	objects int   // keys holding a hash or sorted set
	bytes   int64 // sum of len(key)+len(value) of the keys held (fields and values for objects)
	cmds    map[string]command
	lua     *luaEnv // scripts, run with mu held

	j  *journal
	ln net.Listener

	compacting sync.Mutex // held while a compaction runs
	snapBytes  int64      // size of the last snapshot (under mu)
	expired    uint64     // keys removed because their deadline passed (under mu)

	lastStats atomic.Pointer[Stats] // sizes Stats last read under mu

	afterShard func(int) // test hook: called as the snapshot writer leaves shard i

	stop chan struct{}
	wg   sync.WaitGroup
	conn sync.WaitGroup
	cmu  sync.Mutex
	open map[net.Conn]struct{}
}

// Open loads the store in opts.Dir (snapshot, then journal segments), starts
// its journal, sweeper and compactor, and listens on opts.Addr.
func Open(opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.SweepEvery <= 0 {
		opts.SweepEvery = 5 * time.Millisecond
	}
	if opts.CompactMin <= 0 {
		opts.CompactMin = 64 << 20
	}
	if opts.ScriptBudget <= 0 {
		opts.ScriptBudget = DefaultScriptBudget
	}
	s := &Store{opts: opts, now: opts.Now, seed: maphash.MakeSeed(), cmds: commandTable(),
		stop: make(chan struct{}), open: map[net.Conn]struct{}{}}
	for i := range s.shards {
		s.shards[i] = newShard()
	}
	j, err := s.load()
	if err != nil {
		return nil, err
	}
	s.j = j
	s.lua = newLuaEnv(s, opts.ScriptBudget)
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		j.close()
		return nil, fmt.Errorf("embedstore: listen: %w", err)
	}
	s.ln = ln
	s.wg.Add(2)
	go s.serve()
	go s.maintain()
	return s, nil
}

// Addr is the host:port the store serves RESP on.
func (s *Store) Addr() string { return s.ln.Addr().String() }

// Stats is the store's size.
type Stats struct {
	Keys          int   // live keys (some may be past their deadline, not yet swept)
	Bytes         int64 // bytes of keys and values held
	JournalBytes  int64 // journal segments since the last snapshot
	SnapshotBytes int64
	Expired       uint64 // keys removed at their deadline since open
	Syncs         SyncTimes
	// ScriptRunning is true while a Lua script holds the store.
	ScriptRunning bool
	// ScriptsStopped counts scripts stopped at their budget, by SCRIPT
	// KILL or by Close since open.
	ScriptsStopped uint64
}

// statsWait is how long Stats waits for the store's lock before it returns
// the sizes it last read: a script may hold the lock up to its budget, and
// a metrics scrape must not wait for it.
const statsWait = 100 * time.Millisecond

// Stats returns the store's current size (or, while a script holds the
// store past statsWait, the size last read) and its scripts' state.
func (s *Store) Stats() Stats {
	var st Stats
	if s.lockWithin(statsWait) {
		st = Stats{Keys: s.keys, Bytes: s.bytes, SnapshotBytes: s.snapBytes, Expired: s.expired}
		s.mu.Unlock()
		s.lastStats.Store(&st)
	} else if last := s.lastStats.Load(); last != nil {
		st = *last
	}
	st.JournalBytes, st.Syncs = s.j.size()
	st.ScriptRunning, st.ScriptsStopped = s.lua.state()
	return st
}

// lockWithin takes mu if it is free within d.
func (s *Store) lockWithin(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !s.mu.TryLock() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// Close stops serving, waits for the sweeper and any compaction, and
// closes the journal; everything acknowledged is already on disk.
func (s *Store) Close() error {
	select {
	case <-s.stop:
		return errors.New("embedstore: already closed")
	default:
	}
	close(s.stop)
	s.lua.close() // a script holding the lock would hold Close too
	err := s.ln.Close()
	s.cmu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.cmu.Unlock()
	s.conn.Wait()
	s.wg.Wait()
	if jerr := s.j.close(); err == nil || errors.Is(err, net.ErrClosed) {
		err = jerr
	}
	return err
}

func (s *Store) shardOf(k string) (*shard, uint64) {
	h := maphash.String(s.seed, k)
	return &s.shards[h%numShards], h
}

func (s *Store) nowMS() int64 { return s.now().UnixMilli() }

// lookup returns k's entry, deleting it if its deadline has passed (lazy
// expiry). Call with mu held.
func (s *Store) lookup(k string, now int64) (entry, bool) {
	sh, h := s.shardOf(k)
	v, exp, ok := sh.get(h, k)
	if !ok {
		return entry{}, false
	}
	if exp != 0 && exp <= now {
		s.drop(sh, h, k)
		s.expired++
		return entry{}, false
	}
	return entry{val: string(v), exp: exp}, true
}

// drop removes k, a string or an object, without journaling: used for
// expiry, whose deadline the journal already holds, and for replay.
func (s *Store) drop(sh *shard, h uint64, k string) {
	if o, ok := sh.objs[k]; ok {
		delete(sh.objs, k)
		s.objects--
		s.keys--
		s.bytes -= int64(len(k)) + o.size
		return
	}
	if ok, n := sh.remove(h, k); ok {
		s.keys--
		s.bytes -= int64(len(k) + n)
	}
}

// store sets k to a string without journaling, replacing an object
// there. Call with mu held.
func (s *Store) store(k string, e entry) {
	sh, h := s.shardOf(k)
	if _, ok := sh.objs[k]; ok {
		s.drop(sh, h, k)
	}
	added, oldLen := sh.set(h, k, e.val, e.exp)
	if added {
		s.keys++
		s.bytes += int64(len(k))
	}
	s.bytes += int64(len(e.val) - oldLen)
}

// put stores k and journals it. Call with mu held.
func (s *Store) put(k string, e entry) {
	s.store(k, e)
	s.j.appendSet(k, e.val, e.exp)
}

// del removes k (of any type) and journals it if it was there. Call with
// mu held.
func (s *Store) del(k string, now int64) bool {
	if kind, _ := s.kindOf(k, now); kind == 0 {
		return false
	}
	sh, h := s.shardOf(k)
	s.drop(sh, h, k)
	s.j.appendDel(k)
	return true
}

// clear removes every key without journaling. Call with mu held.
func (s *Store) clear() {
	for i := range s.shards {
		s.shards[i] = newShard()
	}
	s.keys, s.bytes, s.objects = 0, 0, 0
}

// flush removes every key. Call with mu held.
func (s *Store) flush() {
	s.clear()
	s.j.appendFlush()
}

// maintain runs the sweeper and starts compactions until Close.
func (s *Store) maintain() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.SweepEvery)
	defer t.Stop()
	next := 0
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.sweepShard(next)
		next = (next + 1) % numShards
		if next%64 == 0 && s.needsCompaction() && s.compacting.TryLock() {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer s.compacting.Unlock()
				s.compact() //nolint:errcheck // a failed compaction leaves the journal as it was; the next one retries
			}()
		}
	}
}

// sweepShard deletes the keys of shard i past their deadline: the bounded
// step of the background sweep.
func (s *Store) sweepShard(i int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowMS()
	sh := &s.shards[i]
	var gone []string
	sh.each(func(k, _ []byte, exp int64) bool {
		if exp != 0 && exp <= now {
			gone = append(gone, string(k))
		}
		return true
	})
	for k, o := range sh.objs {
		if o.exp != 0 && o.exp <= now {
			gone = append(gone, k)
		}
	}
	for _, k := range gone {
		_, h := s.shardOf(k)
		s.drop(sh, h, k)
	}
	s.expired += uint64(len(gone))
	return len(gone)
}

// Sweep runs one full pass of the sweeper now and returns how many keys it
// removed. Tests with a fake clock use it instead of waiting.
func (s *Store) Sweep() int {
	n := 0
	for i := range numShards {
		n += s.sweepShard(i)
	}
	return n
}

func (s *Store) needsCompaction() bool {
	s.mu.Lock()
	snap := s.snapBytes
	s.mu.Unlock()
	jb, _ := s.j.size()
	return jb > s.opts.CompactMin && jb > snap
}
