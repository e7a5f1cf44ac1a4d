package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/localcreds"
	"github.com/ctmpipe/ctmpipe/internal/logging"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

// embeddedMaxPayload is the embedded NATS's max_payload, room for Meta's
// largest webhook (3 MB) and a dead letter's headers.
const embeddedMaxPayload = 8 << 20

// drainWait bounds how long shutdown waits for the NATS connection to drain.
const drainWait = 10 * time.Second

// openNATS connects to NATS_URL, or starts the embedded server (JetStream
// in DATA_DIR/nats, listening on NATS_ADDR for order systems and replay)
// and connects to it in-process. stop closes the connection, waiting for a
// drain begun by the caller, then stops the server.
func openNATS(cfg config, creds localcreds.Credentials, log *zap.Logger) (*nats.Conn, string, func(), error) {
	closed := make(chan struct{})
	opts := append(logging.NATS(log), nats.Name("ctmpipe-all-in-one"), nats.MaxReconnects(-1),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if cfg.NATSURL != "" {
		nc, err := nats.Connect(cfg.NATSURL, opts...)
		if err != nil {
			return nil, "", nil, fmt.Errorf("nats: connect: %w", err)
		}
		return nc, cfg.NATSURL, func() { waitClosed(nc, closed) }, nil
	}
	host, portText, _ := net.SplitHostPort(cfg.NATSAddr)
	port, _ := strconv.Atoi(portText)
	if port == 0 {
		port = server.RANDOM_PORT // nats-server reads 0 as its default, 4222
	} else if ln, err := net.Listen("tcp", cfg.NATSAddr); err != nil {
		// nats-server would only log this, and we run it without logs.
		return nil, "", nil, fmt.Errorf("nats: %w (set NATS_ADDR to another address, or NATS_URL to use a running server)", err)
	} else {
		ln.Close()
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "ctmpipe-all-in-one",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "nats"),
		NoSigs:     true,
		NoLog:      false, // logged through zap (logging.Server)
		// NATS's default 1 MB is below BODY_LIMIT's 3 MiB: a webhook kept
		// for forwarding (or captured) is published whole, with headers.
		MaxPayload: embeddedMaxPayload,
		// Every client logs in: the generated user (DATA_DIR/credentials.json,
		// for this process and this machine's tools) and, when set, the
		// operator's NATS_USER for other machines.
		Users: natsUsers(cfg, creds),
	})
	if err != nil {
		return nil, "", nil, fmt.Errorf("nats: %w", err)
	}
	ns.SetLoggerV2(logging.Server(log), false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, "", nil, fmt.Errorf("nats: embedded server not ready on %s", cfg.NATSAddr)
	}
	log.Info("nats listening", zap.String("url", ns.ClientURL()), zap.String("store_dir", filepath.Join(cfg.DataDir, "nats")),
		zap.String("credentials_file", localcreds.Path(cfg.DataDir)), zap.Bool("nats_user_set", cfg.NATSUser != ""))
	nc, err := nats.Connect(ns.ClientURL(), append(opts, nats.InProcessServer(ns), nats.UserInfo(creds.NATSUser, creds.NATSPassword))...)
	if err != nil {
		ns.Shutdown()
		return nil, "", nil, fmt.Errorf("nats: connect: %w", err)
	}
	return nc, ns.ClientURL(), func() {
		waitClosed(nc, closed)
		ns.Shutdown()
		ns.WaitForShutdown()
	}, nil
}

// natsUsers are the embedded NATS's users, with every permission (one
// account, as before; the point is that nobody without a password gets in).
func natsUsers(cfg config, creds localcreds.Credentials) []*server.User {
	users := []*server.User{{Username: creds.NATSUser, Password: creds.NATSPassword}}
	if cfg.NATSUser != "" && cfg.NATSUser != creds.NATSUser {
		users = append(users, &server.User{Username: cfg.NATSUser, Password: cfg.NATSPassword})
	}
	return users
}

func waitClosed(nc *nats.Conn, closed <-chan struct{}) {
	if nc.IsDraining() {
		select {
		case <-closed:
		case <-time.After(drainWait):
		}
	}
	nc.Close()
}

// openRedis connects to REDIS_URL, or opens the embedded store and
// registers its size metrics with reg.
func openRedis(ctx context.Context, cfg config, creds localcreds.Credentials, log *zap.Logger, reg prometheus.Registerer) (redis.UniversalClient, func(), error) {
	if cfg.RedisURL != "" {
		rdb, err := attribution.NewClient(cfg.RedisURL)
		if err != nil {
			return nil, nil, err
		}
		// Before the first command (see cmd/ingest). Ingest and sender read
		// the same REDIS_MIN_REPLICAS.
		if err := replicas.Install(rdb, cfg.Ingest.Replicas, replicas.NewMetrics(reg)); err != nil {
			rdb.Close()
			return nil, nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if err := rdb.Ping(pctx).Err(); err != nil {
			// As ingest does: start anyway; webhooks get 503 until it answers.
			log.Warn("redis unreachable at start", zap.Error(err))
		} else {
			replicas.LogMode(pctx, log, rdb, cfg.Ingest.Replicas)
		}
		return rdb, func() { rdb.Close() }, nil
	}
	began := time.Now()
	st, err := openStore(cfg.DataDir, creds.StorePassword, cfg.ScriptBudget)
	if err != nil {
		return nil, nil, err
	}
	s := st.Stats()
	log.Info("embedded store ready", zap.String("dir", filepath.Join(cfg.DataDir, storeDir)), zap.String("addr", st.Addr()),
		zap.Int("keys", s.Keys), zap.Int64("bytes", s.Bytes), zap.Int64("journal_bytes", s.JournalBytes),
		zap.Int64("snapshot_bytes", s.SnapshotBytes), zap.Duration("load_time", time.Since(began)),
		zap.String("credentials_file", localcreds.Path(cfg.DataDir)), zap.Duration("script_budget", cfg.ScriptBudget))
	reg.MustRegister(newStoreCollector(st))
	replicas.NewMetrics(reg) // always zero here: the same metrics as with REDIS_URL
	rdb := storeClient(st, creds.StorePassword)
	return rdb, func() {
		rdb.Close()
		if err := st.Close(); err != nil {
			log.Error("embedded store close", zap.Error(err))
		}
	}, nil
}

// loggedDryRun writes CAPI requests to the dry-run file and logs each one
// (dataset and event ids, which are order ids: nothing personal).
type loggedDryRun struct {
	d    *sender.DryRun
	log  *zap.Logger
	file string
}

func (l loggedDryRun) Send(ctx context.Context, datasetID, token string, events []capi.Event) (capi.Response, error) {
	r, err := l.d.Send(ctx, datasetID, token, events)
	return r, l.logged(err, datasetID, events)
}

// SendAs keeps the business's own test_event_code and partner_agent from
// the registry (the sender calls it when its Poster has it).
func (l loggedDryRun) SendAs(ctx context.Context, datasetID string, cr capi.Credentials, events []capi.Event) (capi.Response, error) {
	r, err := l.d.SendAs(ctx, datasetID, cr, events)
	return r, l.logged(err, datasetID, events)
}

func (l loggedDryRun) logged(err error, datasetID string, events []capi.Event) error {
	if err != nil {
		return err
	}
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.EventID
	}
	l.log.Info("capi request written (dry run)", zap.String("dataset_id", datasetID),
		zap.Int("events", len(events)), zap.Strings("event_ids", ids), zap.String("file", l.file))
	return nil
}
