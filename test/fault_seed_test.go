package test

import (
	"flag"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The random choices of the fault scenarios (kill points, fault order,
// shuffles) come from one seed, logged by every scenario, so that a failure
// can be replayed: go test ./test -run TestFaultX -args -seed=N (or
// FAULT_SEED=N). Each test draws from its own stream (the seed and its name),
// so that scenarios running in parallel do not disturb each other's draws.
var faultSeedFlag = flag.Uint64("seed", 0, "seed of the fault scenarios' random kill points (also FAULT_SEED); 0: a new one")

var faultSeedOnce = sync.OnceValue(func() uint64 {
	if *faultSeedFlag != 0 {
		return *faultSeedFlag
	}
	if s, err := strconv.ParseUint(os.Getenv("FAULT_SEED"), 10, 64); err == nil && s != 0 {
		return s
	}
	return uint64(time.Now().UnixNano())
})

// faultRand is a goroutine-safe random source for one test.
type faultRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

// newFaultRand returns t's random source for kill points and fault
// choices and logs how to replay it.
func newFaultRand(t testing.TB) *faultRand {
	seed := faultSeedOnce()
	t.Logf("fault seed %d (replay: go test ./test -run '^%s$' -args -seed=%d)", seed, t.Name(), seed)
	return faultRandOf(seed, t.Name())
}

// newTrafficRand is t's random source for the traffic (ids, businesses),
// apart from newFaultRand's: the traffic draws concurrently with the kill
// points, which must replay the same whatever the interleaving.
func newTrafficRand(t testing.TB) *faultRand {
	return faultRandOf(faultSeedOnce(), t.Name()+"/traffic")
}

func faultRandOf(seed uint64, name string) *faultRand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return &faultRand{r: rand.New(rand.NewPCG(seed, h.Sum64()))}
}

func (f *faultRand) IntN(n int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.r.IntN(n)
}

func (f *faultRand) Uint64() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.r.Uint64()
}

func (f *faultRand) Shuffle(n int, swap func(i, j int)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.r.Shuffle(n, swap)
}

// Duration is a random duration in [lo, lo+span).
func (f *faultRand) Duration(lo, span time.Duration) time.Duration {
	return lo + time.Duration(f.IntN(int(span)))
}
