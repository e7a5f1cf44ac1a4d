// Package redistest starts a real redis-server for integration tests.
//
// Tests that use it are skipped under -short, and when redis-server is not
// installed, except when CI=true: there a missing binary fails the test, so
// that integration tests never silently stop running in CI.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process owned by a test.
type Server struct {
	Addr string // host:port
	dir  string
	args []string
	cmd  *exec.Cmd
	t    testing.TB
}

// Binary returns the redis-server path, skipping or failing t when it is
// missing as the package comment describes.
func Binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not found on PATH; CI must install it (apt-get install -y redis-server)")
		}
		t.Skip("redis-server not found on PATH; install it (apt-get install -y redis-server) to run integration tests")
	}
	return path
}

// Start runs redis-server on a free loopback port, without persistence, and
// stops it when the test ends.
func Start(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	return StartOn(t, FreePort(t), extraArgs...)
}

// StartOn is Start on a given port: a test that starts a service before its
// Redis knows the address in advance.
func StartOn(t testing.TB, port int, extraArgs ...string) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	s := &Server{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		dir:  dir,
		t:    t,
		args: append([]string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir,
			"--logfile", filepath.Join(dir, "redis.log"),
		}, extraArgs...),
	}
	s.cmd = s.start(bin)
	t.Cleanup(s.Kill)
	return s
}

func (s *Server) start(bin string) *exec.Cmd {
	s.t.Helper()
	cmd := exec.Command(bin, s.args...)
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	go cmd.Wait() //nolint:errcheck // reaped here; exit status is irrelevant
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return cmd
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redis-server on %s not ready: %v\n%s", s.Addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL returns the redis:// URL of the server.
func (s *Server) URL() string { return fmt.Sprintf("redis://%s/0", s.Addr) }

// Client returns a client for the server, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// Kill stops the server with SIGKILL, as a crash would. It is safe to call twice.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	// Wait until the port is free so that Restart can bind it again.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", s.Addr, 50*time.Millisecond)
		if err != nil {
			break
		}
		conn.Close()
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd = nil
}

// Restart starts the server again on the same address (empty, as after a
// crash without persistence, unless extraArgs enabled it).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.cmd = s.start(Binary(s.t))
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartCluster runs a one-node Redis Cluster (cluster mode on, every hash
// slot on this node) and stops it when the test ends. It is enough to check
// what Cluster enforces that a single node does not: a script or a
// multi-key command may only touch keys of one hash slot (CROSSSLOT).
// Connect with ClusterURL.
func StartCluster(t testing.TB) *Server {
	t.Helper()
	s := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-port", strconv.Itoa(FreePort(t)))
	c := s.Client(t)
	ctx := t.Context()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("redis cluster: assign slots: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis cluster not ok within 10s: %v %q", err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ClusterURL returns the redis+cluster:// URL of a server from StartCluster.
func (s *Server) ClusterURL() string { return "redis+cluster://" + s.Addr }

// StartClusterN runs an n-master Redis Cluster (cluster mode on, the hash
// slots split evenly, joined with CLUSTER MEET, as redis-cli --cluster
// create would) and stops it when the test ends. extraArgs go to every
// node (e.g. --appendonly yes so that a node killed and restarted keeps its
// data; its nodes.conf keeps its slots). Connect with ClusterURLOf.
func StartClusterN(t testing.TB, n int, extraArgs ...string) []*Server {
	t.Helper()
	nodes := make([]*Server, n)
	bus := make([]int, n)
	for i := range nodes {
		bus[i] = FreePort(t)
		nodes[i] = Start(t, append([]string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(bus[i]), "--cluster-node-timeout", "5000",
			"--cluster-require-full-coverage", "no"}, extraArgs...)...)
	}
	ctx := t.Context()
	for i, s := range nodes {
		c := s.Client(t)
		lo, hi := i*16384/n, (i+1)*16384/n-1
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("redis cluster: assign slots %d-%d: %v", lo, hi, err)
		}
		if i > 0 {
			host, port, _ := net.SplitHostPort(s.Addr)
			if err := nodes[0].Client(t).Do(ctx, "CLUSTER", "MEET", host, port, bus[i]).Err(); err != nil {
				t.Fatalf("redis cluster: meet: %v", err)
			}
		}
	}
	for _, s := range nodes {
		s.WaitClusterOK(t, n)
	}
	return nodes
}

// WaitClusterOK waits until s, a node of a cluster of n, says
// cluster_state:ok and knows all n nodes (after StartClusterN, or after a
// Restart while it rejoins), failing t after 30 s.
func (s *Server) WaitClusterOK(t testing.TB, n int) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := c.ClusterInfo(t.Context()).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)+"\r") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis cluster node %s not ok within 30s: %v %q", s.Addr, err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ClusterURLOf is the redis+cluster:// URL naming every node as a seed.
func ClusterURLOf(nodes []*Server) string {
	addrs := make([]string, len(nodes))
	for i, s := range nodes {
		addrs[i] = s.Addr
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}
