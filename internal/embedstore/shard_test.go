package embedstore

import (
	"fmt"
	"strings"
	"testing"
)

// TestShardCollisionsAndRewrite drives a shard with keys forced onto the
// same hash and with enough overwrites to rewrite its arena.
func TestShardCollisionsAndRewrite(t *testing.T) {
	sh := newShard()
	want := map[string]string{}
	check := func(when string) {
		t.Helper()
		if sh.len() != len(want) {
			t.Fatalf("%s: len = %d; want %d", when, sh.len(), len(want))
		}
		for k, v := range want {
			h := uint64(len(k) % 3) // few hashes: many collisions
			got, _, ok := sh.get(h, k)
			if !ok || string(got) != v {
				t.Fatalf("%s: get(%q) = %q, %v; want %q", when, k, got, ok, v)
			}
		}
		seen := 0
		sh.each(func(k, v []byte, _ int64) bool {
			if want[string(k)] != string(v) {
				t.Fatalf("%s: each saw %q = %q; want %q", when, k, v, want[string(k)])
			}
			seen++
			return true
		})
		if seen != len(want) {
			t.Fatalf("%s: each saw %d keys; want %d", when, seen, len(want))
		}
	}
	set := func(k, v string) {
		sh.set(uint64(len(k)%3), k, v, 0)
		want[k] = v
	}
	del := func(k string) {
		if ok, _ := sh.remove(uint64(len(k)%3), k); !ok {
			t.Fatalf("remove(%q) found nothing", k)
		}
		delete(want, k)
	}
	for _, k := range []string{"a", "b", "cc", "ddd", "eeee"} {
		set(k, "v-"+k)
	}
	check("after the first sets")
	del("a") // the key in idx; "b" (same hash) stays reachable in coll
	check("after removing the indexed key")
	set("a", "again")
	check("after setting it again")
	for i := range 2000 {
		set("eeee", strings.Repeat("x", 100)+fmt.Sprint(i))
	}
	if sh.garbage >= len(sh.arena) {
		t.Errorf("garbage %d of arena %d: never rewritten", sh.garbage, len(sh.arena))
	}
	check("after many overwrites")
	if ok, _ := sh.remove(1, "zz"); ok {
		t.Error("removed a key never set")
	}
}
