// Package natstest runs an in-process NATS server with JetStream for tests.
package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
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
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
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
