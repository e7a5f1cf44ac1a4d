package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// runNATS runs a JetStream-enabled NATS server, the one go.mod pins, as its
// own process: the benchmark scripts need no nats-server binary and no
// download, and the server's CPU is not mixed into the generator's process.
func runNATS(ctx context.Context, args []string, _ func(string) string, stdout io.Writer) error {
	fs := newFlags("nats")
	addr := fs.String("addr", "127.0.0.1:4222", "listen address")
	store := fs.String("store", "", "JetStream store directory (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *store == "" {
		return fmt.Errorf("nats: -store is required")
	}
	host, portStr, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("nats: -addr: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("nats: -addr port: %w", err)
	}
	if port == 0 {
		port = -1 // nats-server's "any free port"; 0 would mean its default 4222
	}
	ns, err := server.NewServer(&server.Options{Host: host, Port: port, JetStream: true, StoreDir: *store,
		NoSigs: true, NoLog: true, MaxPayload: 8 << 20})
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return fmt.Errorf("nats: not ready after 10s")
	}
	fmt.Fprintf(stdout, "nats listening on %s\n", ns.ClientURL())
	<-ctx.Done()
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil
}
