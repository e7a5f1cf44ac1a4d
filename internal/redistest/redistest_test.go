package redistest

import (
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestRestartEmptiesAndServes(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping after kill succeeded; want an error")
	}
	s.Restart()
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("Exists after restart = %d, %v; want 0, nil", n, err)
	}
}

// TestStartClusterN: three masters, every slot served, keys spread over
// all three, and a killed master restarted with AOF keeps its keys.
func TestStartClusterN(t *testing.T) {
	nodes := StartClusterN(t, 3, "--appendonly", "yes", "--appendfsync", "always")
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{nodes[0].Addr}})
	defer c.Close()
	ctx := t.Context()
	for i := range 100 {
		if err := c.Set(ctx, "k"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if got := n.Client(t).DBSize(ctx).Val(); got == 0 {
			t.Fatalf("node %s holds no key", n.Addr)
		}
	}
	nodes[1].Restart()
	for _, n := range nodes {
		n.WaitClusterOK(t, 3)
	}
	for i := range 100 {
		if v, err := c.Get(ctx, "k"+strconv.Itoa(i)).Int(); err != nil || v != i {
			t.Fatalf("k%d after a restart: %d %v", i, v, err)
		}
	}
}
