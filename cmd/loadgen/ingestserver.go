package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"

	"github.com/ctmpipe/ctmpipe/internal/ingest"
	"github.com/ctmpipe/ctmpipe/internal/logging"
	"github.com/ctmpipe/ctmpipe/internal/services"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// runIngestServer runs ingest as cmd/ingest wires it (same configuration,
// environment and flags, same internal/ingest server), writing a CPU profile
// of the whole process from start to SIGTERM. cmd/ingest has no pprof
// endpoint, and a profile taken in a test process would mix the generator's
// CPU into the server's; this one holds only the server.
//
//	loadgen ingest-server -cpuprofile ingest.prof [ingest flags]
func runIngestServer(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) < 2 || args[0] != "-cpuprofile" {
		return errors.New("usage: loadgen ingest-server -cpuprofile FILE [ingest flags] (configuration as for cmd/ingest)")
	}
	profile := args[1]
	cfg, _, err := services.ParseIngest(args[2:], getenv)
	if err != nil {
		return err
	}
	if cfg.RedisURL == "" || cfg.Capture {
		return errors.New("ingest-server: needs REDIS_URL, and does not capture to NATS")
	}
	log := logging.New(os.Stderr, cfg.LogLevel)
	defer log.Sync() //nolint:errcheck // nothing to do at exit
	rdb, err := attribution.NewClient(cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	srv, err := ingest.New(cfg, ingest.Deps{Logger: log, Store: attribution.NewStore(rdb, cfg.ContextTTL)})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	f, err := os.Create(profile)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()
	fmt.Fprintf(stdout, "ingest-server profiling to %s\n", profile)
	return srv.Serve(ctx, ln)
}
