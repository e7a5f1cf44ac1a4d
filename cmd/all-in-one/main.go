// Command all-in-one runs ingest and sender in one process with an embedded
// NATS server and, unless REDIS_URL is set, an embedded durable
// Redis-compatible store: the pipeline on one machine with nothing
// installed. Run it with -help for the settings.
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
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/internal/buildinfo"
	"github.com/ctmpipe/ctmpipe/internal/ingest"
	"github.com/ctmpipe/ctmpipe/internal/localcreds"
	"github.com/ctmpipe/ctmpipe/internal/logging"
	"github.com/ctmpipe/ctmpipe/internal/pprofserver"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/services"
	"github.com/ctmpipe/ctmpipe/internal/startup"
	"github.com/ctmpipe/ctmpipe/internal/tracing"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

func main() {
	if buildinfo.Asked(os.Args[1:]) {
		fmt.Println(buildinfo.Line("all-in-one"))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "all-in-one:", err)
		os.Exit(1)
	}
}

// run is the recipe: config → logger → serve until ctx is done. The
// shutdown that follows is bounded: whatever still runs SHUTDOWN_TIMEOUT
// after ctx ended is abandoned (run returns an error, and main exits),
// which loses nothing acknowledged: the store fsyncs every write before
// its reply, and JetStream redelivers what was not acked.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return err
	}
	if err != nil {
		return err
	}
	log := logging.New(stderr, cfg.Ingest.LogLevel)
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, getenv, log, stdout) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	limit := max(cfg.Ingest.ShutdownTimeout, cfg.Sender.ShutdownTimeout)
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		log.Error("shutdown not done within SHUTDOWN_TIMEOUT: exiting with it unfinished", zap.Duration("shutdown_timeout", limit))
		return fmt.Errorf("shutdown: not done within %s (SHUTDOWN_TIMEOUT); exiting anyway", limit)
	}
}

// serve is the pipeline: data dir → credentials → NATS → store → registry
// key → ingest and sender until ctx is done → shut down in reverse order.
func serve(ctx context.Context, cfg config, getenv func(string) string, log *zap.Logger, stdout io.Writer) error {
	traceStop, err := tracing.Setup(ctx, "ctmpipe-all-in-one", cfg.Ingest.Tracing.Getenv(getenv))
	if err != nil {
		return err
	}
	defer tracing.Stop(traceStop, log)
	tracing.LogStarted(log, cfg.Ingest.Tracing.Getenv(getenv), "ctmpipe-all-in-one")
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	var creds localcreds.Credentials
	if cfg.NATSURL == "" || cfg.RedisURL == "" {
		var created bool
		if creds, created, err = localcreds.LoadOrCreate(cfg.DataDir); err != nil {
			return err
		}
		log.Info("embedded servers require credentials", zap.String("file", localcreds.Path(cfg.DataDir)), zap.Bool("created", created))
	}
	if cfg.DevSecrets {
		log.Warn("development mode: META_APP_SECRET, META_VERIFY_TOKEN and ADMIN_TOKEN are development values and every listener is bound to 127.0.0.1; set all three for real webhooks",
			zap.Strings("rebound_to_loopback", cfg.Rebound))
	}
	log.Info("starting", zap.String("data_dir", cfg.DataDir), zap.Bool("development_mode", cfg.DevSecrets),
		zap.Bool("embedded_nats", cfg.NATSURL == ""), zap.Bool("embedded_store", cfg.RedisURL == ""),
		zap.Bool("app_secret_set", len(cfg.Ingest.AppSecrets) > 0), zap.Bool("capi_token_set", cfg.Sender.AccessToken != ""),
		zap.Bool("capi_dry_run", cfg.Sender.DryRunFile != ""), zap.Bool("capture", cfg.Ingest.Capture))

	nc, natsURL, stopNATS, err := openNATS(cfg, creds, log)
	if err != nil {
		return err
	}
	defer stopNATS()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	_ = buildinfo.Register(reg) // build_info{version,commit,goversion}
	rdb, closeStore, err := openRedis(ctx, cfg, creds, log, reg)
	if err != nil {
		return err
	}
	defer closeStore()
	if cfg.Services.RegistryKey == "" {
		if cfg.Services.RegistryKey, cfg.DevRegistryKey, err = devRegistryKey(ctx, cfg.DataDir, rdb, log); err != nil {
			return err
		}
	}
	// The sender reads the registry with the key ingest's API writes it with.
	cfg.Sender.RegistryKey = cfg.Services.RegistryKey

	store := attribution.NewStore(rdb, cfg.Ingest.ContextTTL)
	_ = startup.RegisterReady(reg, startup.Checks{"redis": store.Ping, "nats": startup.NATSCheck(nc)})
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	svc, err := services.New(cfg.Services, services.Deps{
		Log: log, NATS: nc, Redis: rdb, Registerer: reg,
		Resumer: sender.Resumer{Redis: rdb, JS: js},
	})
	if err != nil {
		return err
	}
	ing, err := newIngest(cfg, log, nc, store, reg, svc)
	if err != nil {
		return err
	}
	snd, closeSender, err := newSender(cfg, log, nc, store, rdb, reg)
	if err != nil {
		return err
	}
	defer closeSender()
	if cfg.Ingest.PprofAddr != "" {
		_, stopPprof, err := pprofserver.Start(cfg.Ingest.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	// One admin listener for ingest's admin API and everyone's metrics
	// (the sender registers on the same registry).
	adm := admin.New(admin.Config{Token: cfg.Ingest.AdminToken, ShutdownTimeout: cfg.Ingest.ShutdownTimeout}, log, reg)
	ing.AdminRoutes(adm.API())
	svc.Mount(adm)
	ln, err := net.Listen("tcp", cfg.Ingest.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	aln, err := net.Listen("tcp", cfg.Ingest.AdminAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen admin: %w", err)
	}

	printBanner(stdout, cfg, ln.Addr().String(), aln.Addr().String(), natsURL)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ing.Serve(gctx, ln) })
	g.Go(func() error { return adm.Serve(gctx, aln) })
	g.Go(func() error { return snd.Run(gctx) })
	g.Go(func() error { return svc.Run(gctx) })
	err = g.Wait()
	// The sender hands back what it could not finish; drain before the
	// server stops so those naks reach it.
	if derr := nc.Drain(); derr != nil && err == nil {
		err = fmt.Errorf("nats drain: %w", derr)
	}
	return err
}

// newIngest builds the ingest server; its capture publishes on nc.
func newIngest(cfg config, log *zap.Logger, nc *nats.Conn, store *attribution.Store, reg *prometheus.Registry, svc *services.Services) (*ingest.Server, error) {
	deps := ingest.Deps{Logger: log, Store: store, Registerer: reg, Forward: svc.Enqueuer(), AutoEvents: svc.AutoPublisher(),
		Policies: svc.Policies()}
	if cfg.Ingest.Capture {
		c, err := ingest.NewCapture(nc, cfg.Ingest, log, reg)
		if err != nil {
			return nil, err
		}
		deps.Capture = c
	}
	return ingest.New(cfg.Ingest, deps)
}

// newSender builds the sender, posting for real with a token and into the
// dry-run file (logged) without one.
func newSender(cfg config, log *zap.Logger, nc *nats.Conn, store *attribution.Store, rdb redis.UniversalClient, reg *prometheus.Registry) (*sender.Service, func(), error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	deps := sender.Deps{Log: log, JS: js, Store: store, Redis: rdb, Registerer: reg}
	if deps.Registry, err = sender.NewRegistry(cfg.Sender, rdb, log); err != nil {
		return nil, nil, err
	}
	closeFn := func() {}
	if cfg.Sender.DryRunFile != "" {
		d, err := sender.NewDryRun(cfg.Sender.DryRunFile, cfg.Sender.PartnerAgent, cfg.Sender.TestEventCode)
		if err != nil {
			return nil, nil, err
		}
		deps.Poster = loggedDryRun{d, log.With(zap.String("component", "capi_dry_run")), cfg.Sender.DryRunFile}
		closeFn = func() { d.Close() }
		log.Warn("no CAPI access token: running dry, requests go to the dry-run file", zap.String("file", cfg.Sender.DryRunFile))
	}
	s, err := sender.New(cfg.Sender, deps)
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	return s, closeFn, nil
}
