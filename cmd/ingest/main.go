// Command ingest receives Meta's webhooks and stores the ad-click context of
// each conversation in Redis. See internal/ingest and `ingest --help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/internal/buildinfo"
	"github.com/ctmpipe/ctmpipe/internal/ingest"
	"github.com/ctmpipe/ctmpipe/internal/logging"
	"github.com/ctmpipe/ctmpipe/internal/pprofserver"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/services"
	"github.com/ctmpipe/ctmpipe/internal/startup"
	"github.com/ctmpipe/ctmpipe/internal/tracing"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

func main() {
	if buildinfo.Asked(os.Args[1:]) {
		fmt.Println(buildinfo.Line("ingest"))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

// run is the whole program: config → logger → Redis → (NATS) → server →
// serve the webhook and admin listeners until ctx is done → shut down in
// reverse order.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, scfg, err := services.ParseIngest(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		services.PrintIngestUsage(stdout)
		return nil
	}
	// REDIS_URL is this binary's need (ingest.New takes a store), named
	// with the settings ParseConfig found missing, so one run lists them all.
	if redisURLMissing(cfg, err, args, getenv) {
		err = errors.Join(err, errors.New("config: REDIS_URL is required (e.g. redis://localhost:6379/0)"))
	}
	if err != nil {
		return err
	}

	// Sampled: an outage answered with 503 thousands of times a second
	// must not flood the log.
	log := logging.New(stderr, cfg.LogLevel, logging.Sample)
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	traceStop, err := tracing.Setup(ctx, "ctmpipe-ingest", cfg.Tracing.Getenv(getenv))
	if err != nil {
		return err
	}
	defer tracing.Stop(traceStop, log)
	tracing.LogStarted(log, cfg.Tracing.Getenv(getenv), "ctmpipe-ingest")

	rdb, err := attribution.NewClient(cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := attribution.NewStore(rdb, cfg.ContextTTL)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Before the first command: on Redis Cluster the hook goes to each
	// node's client as it is made.
	if err := replicas.Install(rdb, cfg.Replicas, replicas.NewMetrics(reg)); err != nil {
		return err
	}
	// Ingest serves at once, whatever is up: webhooks get 503 (Meta
	// retries) while Redis is away. /readyz says "starting" until Redis
	// and, when needed, NATS with JetStream have answered once (waitStart).
	var gate startup.Gate
	gate.Wait("start")
	_ = buildinfo.Register(reg) // build_info{version,commit,goversion}
	deps := ingest.Deps{Logger: log, Store: store, Registerer: reg, Started: gate.Err}
	var nc *nats.Conn
	// Whenever NATS_URL is set (capture, the intake, forwarding and the
	// automatic events need it; the dead-letter API reads DLQ through it).
	if cfg.NATSURL != "" {
		if nc, err = ingest.ConnectNATS(cfg.NATSURL, log); err != nil {
			return err
		}
		// Drained after both listeners and the forwarder stopped, so that
		// capture's queue and the last acks get through.
		defer drain(nc, log)
	}
	ready := startup.Checks{"redis": store.Ping}
	if nc != nil {
		ready["nats"] = startup.NATSCheck(nc)
	}
	_ = startup.RegisterReady(reg, ready) // ctmpipe_dependency_ready{dependency}
	go waitStart(ctx, log, &gate, store, nc, cfg.Replicas)
	if cfg.Capture {
		if deps.Capture, err = ingest.NewCapture(nc, cfg, log, reg); err != nil {
			return err
		}
	}
	var js jetstream.JetStream
	if nc != nil {
		if js, err = jetstream.New(nc); err != nil {
			return fmt.Errorf("jetstream: %w", err)
		}
	}
	svc, err := services.New(scfg, services.Deps{
		Log: log, NATS: nc, Redis: rdb, Registerer: reg,
		Resumer: sender.Resumer{Redis: rdb, JS: js},
	})
	if err != nil {
		return err
	}
	deps.Forward, deps.AutoEvents, deps.Policies = svc.Enqueuer(), svc.AutoPublisher(), svc.Policies()
	srv, err := ingest.New(cfg, deps)
	if err != nil {
		return err
	}
	if cfg.PprofAddr != "" {
		_, stopPprof, err := pprofserver.Start(cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	adm := admin.New(admin.Config{Token: cfg.AdminToken, ShutdownTimeout: cfg.ShutdownTimeout}, log, reg)
	srv.AdminRoutes(adm.API())
	svc.Mount(adm)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	aln, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen admin: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx, ln) })
	g.Go(func() error { return adm.Serve(gctx, aln) })
	g.Go(func() error { return svc.Run(gctx) })
	return g.Wait()
}

// waitStart waits, with backoff and a log line naming the setting, until
// Redis and (nc not nil) NATS with JetStream answer, then opens g.
func waitStart(ctx context.Context, log *zap.Logger, g *startup.Gate, store *attribution.Store, nc *nats.Conn, rc replicas.Config) {
	if startup.Redis(ctx, log, g, store.Ping) != nil {
		return
	}
	replicas.LogMode(ctx, log, store.Client(), rc)
	if nc != nil {
		js, err := jetstream.New(nc)
		if err != nil || startup.JetStream(ctx, log, g, nc, js) != nil {
			return
		}
	}
	g.Open()
}

// drain flushes what is still queued on nc and closes it.
func drain(nc *nats.Conn, log *zap.Logger) {
	if err := nc.Drain(); err != nil {
		log.Warn("nats drain", zap.Error(err))
	}
}

// redisURLMissing reports whether REDIS_URL is unset; after a failed parse
// cfg is empty, so the environment and the flag are looked at.
func redisURLMissing(cfg ingest.Config, err error, args []string, getenv func(string) string) bool {
	if err == nil {
		return cfg.RedisURL == ""
	}
	for _, a := range args {
		if strings.HasPrefix(strings.TrimLeft(a, "-"), "redis-url") {
			return false
		}
	}
	return getenv("REDIS_URL") == ""
}
