// Package natstest runs an in-process NATS server with JetStream for tests.
package natstest

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is an in-process NATS server with JetStream on disk.
type Server struct {
	*server.Server
	opts *server.Options
	t    testing.TB
}

// RunJetStream starts a JetStream-enabled server on a free port with its store
// in a temporary directory, and shuts it down when the test ends.
func RunJetStream(t testing.TB) *Server {
	t.Helper()
	return RunWith(t, nil)
}

// RunWith is RunJetStream with opts changed by mod (nil: none) before the
// server starts: a fixed Port, JetStream off.
func RunWith(t testing.TB, mod func(*server.Options)) *Server {
	t.Helper()
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}
	if mod != nil {
		mod(opts)
	}
	s := &Server{opts: opts, t: t}
	s.start()
	// Keep the port for restarts.
	opts.Port = s.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { s.Server.Shutdown() })
	return s
}

func (s *Server) start() {
	s.t.Helper()
	ns, err := server.NewServer(s.opts)
	if err != nil {
		s.t.Fatalf("nats server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		s.t.Fatalf("nats server not ready")
	}
	s.Server = ns
}

// Restart shuts the server down and starts it again on the same port with the
// same store, as an operator's restart would.
func (s *Server) Restart() {
	s.t.Helper()
	s.Server.Shutdown()
	s.Server.WaitForShutdown()
	s.start()
}

// Connect returns a client connection that reconnects forever, closed when
// the test ends.
func (s *Server) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// RunCluster starts n JetStream servers routed into one cluster, each on
// free ports with its store in a temporary directory, waits until
// JetStream has a meta leader that sees every server, and shuts them down
// when the test ends. Restart of one keeps its ports and store, so it
// rejoins.
func RunCluster(t testing.TB, n int) []*Server {
	t.Helper()
	out := RunClusterPartly(t, n, n)
	WaitJetStream(t, out[0].ClientURL(), 30*time.Second)
	waitPeers(t, out, 30*time.Second)
	return out
}

// RunClusterPartly starts the first running of n servers routed into one
// cluster and does not wait for JetStream: a new cluster may have no meta
// leader until every server is up. Start starts each of the others later,
// as a server that joins late would.
func RunClusterPartly(t testing.TB, n, running int) []*Server {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))})
	}
	out := make([]*Server, n)
	for i := range out {
		opts := &server.Options{
			ServerName: "n" + strconv.Itoa(i+1),
			Host:       "127.0.0.1",
			Port:       freePort(t),
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "ctmtest", Host: "127.0.0.1", Port: ports[i]},
			Routes:     routes,
		}
		s := &Server{opts: opts, t: t}
		out[i] = s
		t.Cleanup(func() {
			if s.Server != nil {
				s.Server.Shutdown()
			}
		})
	}
	// All at once: a JetStream cluster elects its meta leader once a
	// quorum of servers has routes.
	for _, s := range out[:running] {
		ns, err := server.NewServer(s.opts)
		if err != nil {
			t.Fatalf("nats server: %v", err)
		}
		s.Server = ns
		go ns.Start()
	}
	for _, s := range out[:running] {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats cluster server not ready")
		}
	}
	return out
}

// waitPeers waits until the cluster places a stream of len(nodes)
// replicas: until every server's statistics reached the meta leader, one
// may answer "no suitable peers for placement, peer offline". The probe
// stream is deleted again.
func waitPeers(t testing.TB, nodes []*Server, within time.Duration) {
	t.Helper()
	js := jetStreamAt(t, nodes[0].ClientURL())
	probe := jetstream.StreamConfig{Name: "NATSTEST_PROBE", Subjects: []string{"natstest.probe"}, Replicas: len(nodes), Storage: jetstream.MemoryStorage}
	for deadline := time.Now().Add(within); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := js.CreateStream(ctx, probe)
		if err == nil {
			err = js.DeleteStream(ctx, probe.Name)
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the NATS cluster does not place a stream on all %d servers within %s: %v", len(nodes), within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jetStreamAt returns a JetStream client of the server at url, on a
// connection closed when the test ends.
func jetStreamAt(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}

// WaitJetStream waits until JetStream at url answers (in a cluster: has a
// meta leader), failing t after within.
func WaitJetStream(t testing.TB, url string, within time.Duration) {
	t.Helper()
	js := jetStreamAt(t, url)
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("jetstream at %s not ready within %s: %v", url, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Shutdown stops the server, as a crash of its process would for its
// clients (connections and routes drop at once), and waits until it is down.
func (s *Server) Shutdown() {
	s.Server.Shutdown()
	s.Server.WaitForShutdown()
}

// Start starts a server stopped with Shutdown again on its ports and store.
func (s *Server) Start() {
	s.t.Helper()
	s.start()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
