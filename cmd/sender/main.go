// Command sender reports conversions to Meta's Conversions API for Business
// Messaging; `sender redrive` publishes dead letters back. See
// internal/sender for what it guarantees and `sender --help` for settings.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/buildinfo"
	"github.com/ctmpipe/ctmpipe/internal/localcreds"
	"github.com/ctmpipe/ctmpipe/internal/logging"
	"github.com/ctmpipe/ctmpipe/internal/pprofserver"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/startup"
	"github.com/ctmpipe/ctmpipe/internal/tracing"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/ledger"
	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

func main() {
	if buildinfo.Asked(os.Args[1:]) {
		fmt.Println(buildinfo.Line("sender"))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sender:", err)
		os.Exit(1)
	}
}

// killSelf is the CTM_FAILPOINT action: die at once, as a crash would.
func killSelf(log *zap.Logger) func(string) {
	return func(name string) {
		log.Warn("failpoint reached; killing the process", zap.String("failpoint", name))
		_ = log.Sync()
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "dlq" {
		return dlq(ctx, args[1:], getenv, stdout)
	}
	if len(args) > 0 && args[0] == "redrive" {
		if fwd, err := forwardReason(args[1:]); err != nil || fwd {
			if err != nil {
				return err
			}
			return redriveForward(ctx, args[1:], getenv, stdout)
		}
		return redrive(ctx, args[1:], getenv, stdout)
	}
	cfg, err := sender.ParseConfig(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		sender.PrintUsage(stdout)
		return nil
	}
	if err != nil {
		return err
	}
	log := logging.New(stderr, cfg.LogLevel)
	defer func() { _ = log.Sync() }()
	traceStop, err := tracing.Setup(ctx, "ctmpipe-sender", cfg.Tracing.Getenv(getenv))
	if err != nil {
		return err
	}
	defer tracing.Stop(traceStop, log)
	tracing.LogStarted(log, cfg.Tracing.Getenv(getenv), "ctmpipe-sender")

	// /readyz answers 503 from the start until Redis and NATS answer and
	// the service runs: the sender waits for them (startup) instead of
	// exiting, so that it may start before them.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	_ = buildinfo.Register(reg) // build_info{version,commit,goversion}
	var gate startup.Gate
	gate.Wait("start")
	var running atomic.Pointer[sender.Service]
	ready := func(ctx context.Context) error {
		if err := gate.Err(); err != nil {
			return err
		}
		if svc := running.Load(); svc != nil {
			return svc.Ready(ctx)
		}
		return errors.New("starting")
	}
	if cfg.MetricsAddr != "" {
		stopHTTP, err := serveHTTP(cfg.MetricsAddr, reg, ready, log)
		if err != nil {
			return err
		}
		defer stopHTTP()
	}

	rdb, err := attribution.NewClient(cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	// Before the first command: on Redis Cluster the hook goes to each
	// node's client as it is made.
	if err := replicas.Install(rdb, cfg.Replicas, replicas.NewMetrics(reg)); err != nil {
		return err
	}
	if err := startup.Redis(ctx, log, &gate, func(ctx context.Context) error { return rdb.Ping(ctx).Err() }); err != nil {
		return nil // stopped while waiting
	}
	replicas.LogMode(ctx, log, rdb, cfg.Replicas)
	nc, err := startup.Connect(cfg.NATSURL, append(logging.NATS(log), nats.Name("ctmpipe-sender"))...)
	if err != nil {
		return err
	}
	defer drain(nc, log)
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := startup.JetStream(ctx, log, &gate, nc, js); err != nil {
		return nil // stopped while waiting
	}
	gate.Open()
	_ = startup.RegisterReady(reg, startup.Checks{"redis": func(ctx context.Context) error { return rdb.Ping(ctx).Err() }, "nats": startup.NATSCheck(nc)})

	deps := sender.Deps{Log: log, JS: js, Store: attribution.NewStore(rdb, 0), Redis: rdb,
		Registerer: reg, Failpoint: killSelf(log)}
	if deps.Registry, err = sender.NewRegistry(cfg, rdb, log); err != nil {
		return err
	}
	if cfg.DryRunFile != "" {
		dr, err := sender.NewDryRun(cfg.DryRunFile, cfg.PartnerAgent, cfg.TestEventCode)
		if err != nil {
			return err
		}
		defer dr.Close()
		deps.Poster = dr
	}
	if cfg.Failpoint != "" {
		log.Warn("test failpoint armed: never set CTM_FAILPOINT in production", zap.String("failpoint", cfg.Failpoint))
	}
	svc, err := sender.New(cfg, deps)
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
	running.Store(svc)
	return svc.Run(ctx)
}

// serveHTTP serves /metrics, /healthz (the process runs) and /readyz (ready:
// NATS and Redis answer) and logs the bound address, so that port 0 works.
func serveHTTP(addr string, reg *prometheus.Registry, ready func(context.Context) error, log *zap.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", zap.Error(err))
		}
	}()
	log.Info("metrics listening", zap.String("addr", ln.Addr().String()))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// drain flushes acks and publishes still buffered and closes nc.
func drain(nc *nats.Conn, log *zap.Logger) {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		log.Warn("nats drain timed out")
		nc.Close()
	}
}

// redrive runs `sender redrive`.
func redrive(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	rc, err := sender.ParseRedriveArgs(args, getenv, time.Now())
	if errors.Is(err, flag.ErrHelp) {
		sender.PrintRedriveUsage(stdout)
		return nil
	}
	if err != nil {
		return err
	}
	nc, js, err := connectJS(rc.NATSURL, rc.DataDir, "ctmpipe-sender-redrive")
	if err != nil {
		return err
	}
	defer nc.Close()
	if rc.RedisURL != "" {
		redisURL, err := localcreds.Redis(rc.RedisURL, rc.DataDir)
		if err != nil {
			return err
		}
		rdb, err := attribution.NewClient(redisURL)
		if err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		defer rdb.Close()
		rc.Options.TakeOvers = ledger.New(rdb, ledger.DefaultSentTTL)
	}
	res, err := sender.Redrive(ctx, js, rc.Options)
	res.Print(stdout, rc.Options.DryRun)
	return err
}
