package embedstore

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// crashHelperEnv makes the test binary, re-executed, run crashHelper in
// the directory it names instead of the tests.
const crashHelperEnv = "EMBEDSTORE_CRASH_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashHelperEnv); dir != "" {
		crashHelper(dir)
		return
	}
	os.Exit(m.Run())
}

// crashHelper opens the store in dir, compacts it over and over, and
// writes strings from four goroutines, printing "ack KEY VALUE" after each
// write's reply, and a hash and a sorted set from a fifth ("hack KEY FIELD
// VALUE", "zack KEY MEMBER SCORE"), "compact" when a compaction begins and "mid" halfway through its
// snapshot (where it then dawdles, writes going on), until it is killed.
func crashHelper(dir string) {
	s, err := Open(Options{Dir: dir})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
		mu.Unlock()
	}
	s.afterShard = func(i int) {
		if i == numShards/2 {
			say("mid")
			time.Sleep(300 * time.Millisecond)
		}
	}
	round := os.Getenv("EMBEDSTORE_CRASH_ROUND")
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), PoolSize: 8})
	// Enough keys that a snapshot takes a while to write.
	_, err = c.Pipelined(contextBG, func(p redis.Pipeliner) error {
		for i := range 10000 {
			p.Set(contextBG, fmt.Sprintf("fill:%s:%d", round, i), strings.Repeat("f", 100), time.Hour)
		}
		return nil
	})
	if err != nil {
		fmt.Println("fill:", err)
		os.Exit(2)
	}
	for w := range 4 {
		go func() {
			for i := 0; ; i++ {
				k, v := fmt.Sprintf("r%s-w%d-%d", round, w, i), strconv.Itoa(i)
				if i%3 == 2 {
					// Overwrite and expire: the last acknowledged state must win.
					k = fmt.Sprintf("r%s-w%d-hot", round, w)
				}
				if err := c.Set(contextBG, k, v, time.Hour).Err(); err != nil {
					say("error %v", err)
					return
				}
				say("ack %s %s", k, v)
			}
		}()
	}
	// A fifth writer changes a hash and a sorted set a field at a time, and
	// counts with HINCRBY (journaled as sums).
	go func() {
		hk, zk := "r"+round+"-hash", "r"+round+"-zset"
		for i := 0; ; i++ {
			f := "f" + strconv.Itoa(i)
			if err := c.HSet(contextBG, hk, f, i).Err(); err != nil {
				say("error %v", err)
				return
			}
			say("hack %s %s %d", hk, f, i)
			n, err := c.HIncrBy(contextBG, hk, "count", 1).Result()
			if err != nil {
				say("error %v", err)
				return
			}
			say("hack %s count-hot %d", hk, n)
			if err := c.ZAdd(contextBG, zk, redis.Z{Score: float64(i), Member: f}).Err(); err != nil {
				say("error %v", err)
				return
			}
			say("zack %s %s %d", zk, f, i)
		}
	}()
	for {
		say("compact")
		if err := s.Compact(); err != nil {
			say("error %v", err)
		}
	}
}

// TestSIGKILLDuringCompaction kills a process writing to the store in the
// middle of a compaction, and checks after reopening that every write it
// acknowledged is there, round after round in the same directory.
func TestSIGKILLDuringCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a subprocess")
	}
	dir := t.TempDir()
	want := map[string]string{}
	fields := map[[3]string]string{} // hack|zack, key, field → value
	midCompaction := 0
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir, "EMBEDSTORE_CRASH_ROUND="+strconv.Itoa(round))
		stdout, err := cmd.StdoutPipe()
		must(t, err)
		cmd.Stderr = os.Stderr
		must(t, cmd.Start())
		sc := bufio.NewScanner(stdout)
		compacts, killed := 0, false
		for sc.Scan() {
			line := sc.Text()
			switch f := strings.Fields(line); {
			case len(f) == 3 && f[0] == "ack":
				want[f[1]] = f[2]
			case len(f) == 4 && (f[0] == "hack" || f[0] == "zack"):
				fields[[3]string{f[0], f[1], f[2]}] = f[3]
			case line == "compact":
				compacts++
			case line == "mid":
			default:
				t.Fatalf("helper: %s", line)
			}
			// Kill halfway through the third snapshot (the first two
			// leave journal segments and a snapshot behind).
			if line == "mid" && compacts >= 3 && !killed {
				if _, err := os.Stat(filepath.Join(dir, snapshotName+".tmp")); err == nil {
					midCompaction++
				}
				must(t, cmd.Process.Kill()) // SIGKILL
				killed = true
			}
		}
		// Acks printed before the kill were read above: all of them count.
		cmd.Wait() //nolint:errcheck // killed: the error says so

		s, err := Open(Options{Dir: dir})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		c := redis.NewClient(&redis.Options{Addr: s.Addr()})
		lost := 0
		for k, v := range want {
			got, err := c.Get(t.Context(), k).Result()
			if strings.HasSuffix(k, "-hot") {
				// A later write may have landed without its ack being read.
				if n, _ := strconv.Atoi(got); err != nil || n < atoi(v) {
					lost++
				}
			} else if err != nil || got != v {
				lost++
			}
		}
		for kf, v := range fields {
			var got string
			var err error
			if kf[0] == "zack" {
				got, err = c.Do(t.Context(), "ZSCORE", kf[1], kf[2]).Text()
			} else {
				got, err = c.HGet(t.Context(), kf[1], strings.TrimSuffix(kf[2], "-hot")).Result()
			}
			if strings.HasSuffix(kf[2], "-hot") {
				if n, _ := strconv.Atoi(got); err != nil || n < atoi(v) {
					lost++
				}
			} else if err != nil || got != v {
				lost++
			}
		}
		if lost > 0 {
			t.Errorf("round %d: %d of %d acknowledged writes lost", round, lost, len(want)+len(fields))
		}
		c.Close()
		must(t, s.Close())
	}
	if midCompaction != 4 {
		t.Errorf("%d of 4 kills landed while a snapshot was being written; the test did not test what it says", midCompaction)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
