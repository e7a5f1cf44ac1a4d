package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Replication: a primary with replicas, Sentinels watching them, and Redis
// Cluster masters with replicas, for the failover tests. The helpers wait
// on what Redis reports (INFO replication, SENTINEL, CLUSTER NODES), never
// on time.

// StartReplica runs a redis-server replicating from primary (no
// persistence) and waits until the primary counts it online.
func StartReplica(t testing.TB, primary *Server, extraArgs ...string) *Server {
	t.Helper()
	host, port, _ := net.SplitHostPort(primary.Addr)
	r := Start(t, append([]string{"--replicaof", host, port}, extraArgs...)...)
	primary.WaitReplicas(t, 1)
	return r
}

// WaitReplicas waits until s, a primary, has at least n replicas online
// (state=online in INFO replication), failing t after 30 s.
func (s *Server) WaitReplicas(t testing.TB, n int) {
	t.Helper()
	s.waitInfo(t, "replication", fmt.Sprintf("%d replicas online", n), func(info string) bool {
		return strings.Count(info, ",state=online,") >= n
	})
}

// WaitRole waits until INFO replication says role:role ("master",
// "slave") and, for a replica, that its link to the primary is up.
func (s *Server) WaitRole(t testing.TB, role string) {
	t.Helper()
	s.waitInfo(t, "replication", "role "+role, func(info string) bool {
		return strings.Contains(info, "role:"+role+"\r") &&
			(role != "slave" || strings.Contains(info, "master_link_status:up"))
	})
}

func (s *Server) waitInfo(t testing.TB, section, what string, ok func(string) bool) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := c.Info(ctx, section).Result()
		cancel()
		if err == nil && ok(info) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s: no %s within 30s: %v\n%s", s.Addr, what, err, info)
		}
		time.Sleep(50 * time.Millisecond) // poll
	}
}

// DropReplicas closes s's connections to its replicas (CLIENT KILL TYPE
// replica). Writes s takes from then on stay on s until a replica
// reconnects: a replica that is paused cannot, so what s takes meanwhile is
// on s alone, as in a primary whose replication stream never left it.
// (Pausing the replica alone is not enough on one machine: the kernel keeps
// the stream sent to a stopped process in its socket buffer and hands it
// over when it continues.)
func (s *Server) DropReplicas(t testing.TB) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	if err := c.Do(t.Context(), "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
		t.Fatalf("redis-server on %s: CLIENT KILL TYPE replica: %v", s.Addr, err)
	}
}

// Sentinels are redis-server --sentinel processes watching one primary
// under the master name SentinelMaster.
type Sentinels struct {
	Servers []*Server
}

// SentinelMaster is the master name the Sentinels of StartSentinels use.
const SentinelMaster = "ctm"

// StartSentinels runs n Sentinels (quorum n/2+1) monitoring primary, which
// should already have its replicas (StartReplica), and waits until each
// knows the replicas and the other Sentinels, so that a failover can be
// agreed on. downAfter is how long the primary must be unreachable before
// it counts as down; a failover that finds no replica fit (one still
// stopped, say) is tried again after twice failoverTimeout.
func StartSentinels(t testing.TB, primary *Server, n, replicas int, downAfter, failoverTimeout time.Duration) *Sentinels {
	t.Helper()
	bin := Binary(t)
	host, port, _ := net.SplitHostPort(primary.Addr)
	ss := &Sentinels{}
	for range n {
		p := FreePort(t)
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"+
			"sentinel monitor %s %s %s %d\n"+
			"sentinel down-after-milliseconds %s %d\n"+
			"sentinel failover-timeout %s %d\n"+
			"sentinel parallel-syncs %s 1\n",
			p, dir, filepath.Join(dir, "redis.log"), SentinelMaster, host, port, n/2+1,
			SentinelMaster, downAfter.Milliseconds(), SentinelMaster, failoverTimeout.Milliseconds(), SentinelMaster)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), dir: dir, t: t,
			args: []string{conf, "--sentinel"}}
		s.cmd = s.start(bin)
		t.Cleanup(s.Kill)
		ss.Servers = append(ss.Servers, s)
	}
	for _, s := range ss.Servers {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
		waitTrue(t, 30*time.Second, fmt.Sprintf("sentinel %s to know %d sentinels and %d replicas", s.Addr, n-1, replicas), func(ctx context.Context) (bool, error) {
			others, err := c.Sentinels(ctx, SentinelMaster).Result()
			if err != nil {
				return false, err
			}
			reps, err := c.Replicas(ctx, SentinelMaster).Result()
			if err != nil {
				return false, err
			}
			return len(others) >= n-1 && len(reps) >= replicas, nil
		})
		c.Close()
	}
	return ss
}

// URL is the redis+sentinel:// URL naming every Sentinel.
func (ss *Sentinels) URL() string {
	addrs := make([]string, len(ss.Servers))
	for i, s := range ss.Servers {
		addrs[i] = s.Addr
	}
	return "redis+sentinel://" + SentinelMaster + "@" + strings.Join(addrs, ",") + "/0"
}

// WaitMaster waits until every Sentinel names addr as the master.
func (ss *Sentinels) WaitMaster(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	for _, s := range ss.Servers {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
		waitTrue(t, within, fmt.Sprintf("sentinel %s to name %s master", s.Addr, addr), func(ctx context.Context) (bool, error) {
			hp, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
			if err != nil {
				return false, err
			}
			return len(hp) == 2 && net.JoinHostPort(hp[0], hp[1]) == addr, nil
		})
		c.Close()
	}
}

// StartClusterReplicas adds one replica to each of masters (from
// StartClusterN, with the same extraArgs) and waits until every master
// counts its replica online.
func StartClusterReplicas(t testing.TB, masters []*Server, extraArgs ...string) []*Server {
	t.Helper()
	ctx := t.Context()
	out := make([]*Server, len(masters))
	seed := masters[0].Client(t)
	for i, m := range masters {
		bus := FreePort(t)
		r := Start(t, append([]string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(bus), "--cluster-node-timeout", "5000",
			"--cluster-require-full-coverage", "no"}, extraArgs...)...)
		host, port, _ := net.SplitHostPort(r.Addr)
		if err := seed.Do(ctx, "CLUSTER", "MEET", host, port, bus).Err(); err != nil {
			t.Fatalf("redis cluster: meet replica: %v", err)
		}
		id, err := m.Client(t).Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			t.Fatalf("redis cluster: myid: %v", err)
		}
		rc := r.Client(t)
		// The new node learns the master's id by gossip.
		waitTrue(t, 30*time.Second, "replica "+r.Addr+" to replicate "+m.Addr, func(ctx context.Context) (bool, error) {
			err := rc.Do(ctx, "CLUSTER", "REPLICATE", id).Err()
			return err == nil, err
		})
		out[i] = r
	}
	for _, m := range masters {
		m.WaitReplicas(t, 1)
	}
	for _, s := range append(append([]*Server{}, masters...), out...) {
		s.WaitClusterOK(t, 2*len(masters))
	}
	return out
}

// ClusterFailoverForce makes s, a cluster replica, take over its master's
// slots without the master's agreement (CLUSTER FAILOVER FORCE: the master
// is down) and waits until s is a master.
func (s *Server) ClusterFailoverForce(t testing.TB) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	if err := c.Do(t.Context(), "CLUSTER", "FAILOVER", "FORCE").Err(); err != nil {
		t.Fatalf("redis-server on %s: CLUSTER FAILOVER FORCE: %v", s.Addr, err)
	}
	s.WaitRole(t, "master")
}

// waitTrue polls ok until it reports true, failing t with its last error
// after within.
func waitTrue(t testing.TB, within time.Duration, what string, ok func(context.Context) (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		done, err := ok(ctx)
		cancel()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: waiting for %s: not within %s (last error: %v)", what, within, err)
		}
		time.Sleep(50 * time.Millisecond) // poll
	}
}
