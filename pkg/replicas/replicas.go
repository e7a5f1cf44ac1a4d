// Package replicas makes the writes that must survive a Redis failover wait
// until REDIS_MIN_REPLICAS replicas have them.
//
// Redis replicates asynchronously: a primary answers a write before any
// replica has it, and a replica promoted after the primary died has lost
// what it had not received. The pipeline promises more than that (ingest's
// 200 to Meta, the sender's exactly-once ledger), so such writes are
// followed by WAIT n timeout on the same connection, in the same pipeline
// (no round trip of its own), and count as done only when WAIT says n
// replicas have everything that connection wrote.
//
// The stores mark a write with Durable(ctx) and ask the returned Writes
// whether it was confirmed; Install adds a go-redis hook to the client that
// appends the WAIT to every pipeline made with such a context. On Redis
// Cluster go-redis splits a pipeline per node and runs each part on that
// node's client, so the hook is installed on every node client
// (ClusterClient.OnNewNode) and each node's part carries its own WAIT: the
// WAIT goes to the node that owns the keys written, on the connection that
// wrote them. Without Install (REDIS_MIN_REPLICAS 0, the default) a marked
// write is a plain write and Writes.Err is always nil.
//
// A write that was not confirmed may still have been applied, and may still
// reach the replicas later: callers treat it as a write whose outcome is
// unknown (ingest answers 503 and Meta delivers again; the sender does not
// post and the event comes again). Every such write in this code base is
// idempotent or guarded, so doing it again is safe.
package replicas

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Config is REDIS_MIN_REPLICAS and REDIS_REPLICA_TIMEOUT.
type Config struct {
	Min     int           // replicas that must confirm a write; 0: do not wait
	Timeout time.Duration // how long one WAIT may block
}

// NotReplicatedError says a write was not confirmed by enough replicas in
// time. It names counts and settings only.
type NotReplicatedError struct {
	Got, Want int
	Timeout   time.Duration
}

func (e *NotReplicatedError) Error() string {
	return fmt.Sprintf("redis: write confirmed by %d of %d replicas within %s (REDIS_MIN_REPLICAS, REDIS_REPLICA_TIMEOUT); it may be lost in a failover",
		e.Got, e.Want, e.Timeout)
}

// IsNotReplicated reports whether err says a write was not confirmed by
// enough replicas.
func IsNotReplicated(err error) bool {
	var e *NotReplicatedError
	return errors.As(err, &e)
}

type writesKey struct{}

// Writes collects the WAITs of the pipelines made with one Durable context
// (one per cluster node the pipeline reached, and one more per retry).
type Writes struct {
	mu    sync.Mutex
	waits []waited
}

type waited struct {
	cmd     *redis.IntCmd
	want    int
	timeout time.Duration
}

// Durable returns ctx marking the pipelines made with it as writes that must
// survive a failover, and the Writes that says whether they did. Use a new
// one for each write: Err reports every WAIT made with ctx.
func Durable(ctx context.Context) (context.Context, *Writes) {
	w := &Writes{}
	return context.WithValue(ctx, writesKey{}, w), w
}

// Err is nil when every WAIT of the writes confirmed them (or none ran:
// REDIS_MIN_REPLICAS is 0), else a *NotReplicatedError, or WAIT's own error.
// Call it after the pipeline returned without an error of its own.
func (w *Writes) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, x := range w.waits {
		n, err := x.cmd.Result()
		if err != nil {
			return fmt.Errorf("redis: wait for replicas: %w", err)
		}
		if int(n) < x.want {
			return &NotReplicatedError{Got: int(n), Want: x.want, Timeout: x.timeout}
		}
	}
	return nil
}

func (w *Writes) add(x waited) {
	w.mu.Lock()
	w.waits = append(w.waits, x)
	w.mu.Unlock()
}

// Metrics counts WAITs; nil counts nothing.
type Metrics struct {
	waits, timeouts prometheus.Counter
}

// NewMetrics registers redis_replica_waits_total and
// redis_replica_wait_timeouts_total with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		waits: prometheus.NewCounter(prometheus.CounterOpts{Name: "redis_replica_waits_total",
			Help: "Write batches (one per Redis node written) that waited for REDIS_MIN_REPLICAS replicas (WAIT)."}),
		timeouts: prometheus.NewCounter(prometheus.CounterOpts{Name: "redis_replica_wait_timeouts_total",
			Help: "Write batches that fewer than REDIS_MIN_REPLICAS replicas confirmed within REDIS_REPLICA_TIMEOUT (or whose WAIT failed): not done, done again later."}),
	}
	if reg != nil {
		reg.MustRegister(m.waits, m.timeouts)
	}
	return m
}

// Install makes rdb's pipelines made with a Durable context wait for
// cfg.Min replicas. With cfg.Min 0 it does nothing. Call it before rdb
// runs its first command: on Redis Cluster the hook goes to each node
// client as go-redis creates it. m may be nil.
func Install(rdb redis.UniversalClient, cfg Config, m *Metrics) error {
	if cfg.Min <= 0 {
		return nil
	}
	if cfg.Timeout <= 0 {
		return errors.New("replicas: REDIS_REPLICA_TIMEOUT must be positive (WAIT 0 would block forever)")
	}
	var read time.Duration
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		read = c.Options().ReadTimeout
	case *redis.Client: // a single node, or Sentinel's failover client
		read = c.Options().ReadTimeout
	default:
		return fmt.Errorf("replicas: REDIS_MIN_REPLICAS with a %T client is not supported", rdb)
	}
	// WAIT's answer is read like any reply: past the read timeout the
	// connection is dropped and the write retried, never confirmed.
	if read > 0 && cfg.Timeout >= read {
		return fmt.Errorf("replicas: REDIS_REPLICA_TIMEOUT (%s) must be shorter than the Redis read timeout (%s; read_timeout in REDIS_URL)", cfg.Timeout, read)
	}
	h := &hook{cfg: cfg, m: m}
	if c, ok := rdb.(*redis.ClusterClient); ok {
		c.OnNewNode(func(node *redis.Client) { node.AddHook(h) })
	} else {
		rdb.AddHook(h)
	}
	return nil
}

// hook appends WAIT to the pipelines made with a Durable context. On a
// ClusterClient it runs on node clients, so each node's part of a pipeline
// gets its own WAIT.
type hook struct {
	cfg Config
	m   *Metrics
}

func (h *hook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		w, _ := ctx.Value(writesKey{}).(*Writes)
		// A transaction (MULTI ... EXEC) is read as one reply: a WAIT after
		// it would not be read. Durable writes use scripts instead.
		if w == nil || len(cmds) == 0 || connSetup(cmds) || cmds[0].Name() == "multi" {
			return next(ctx, cmds)
		}
		wait := redis.NewIntCmd(ctx, "wait", h.cfg.Min, h.cfg.Timeout.Milliseconds())
		// A copy: the caller's slice (the pipeline's commands) stays as it
		// was, so Pipelined returns only the caller's commands.
		all := append(cmds[:len(cmds):len(cmds)], wait)
		// The pipeline runs without the mark: a connection it dials is
		// set up by a pipeline of its own made with this ctx (connSetup).
		err := next(context.WithValue(ctx, writesKey{}, (*Writes)(nil)), all)
		w.add(waited{cmd: wait, want: h.cfg.Min, timeout: h.cfg.Timeout})
		if h.m != nil {
			h.m.waits.Inc()
			if n, werr := wait.Result(); werr != nil || int(n) < h.cfg.Min {
				h.m.timeouts.Inc()
			}
		}
		return err
	}
}

// connSetup reports whether cmds set up a new connection (go-redis runs
// HELLO, AUTH, SELECT, CLIENT SETINFO as a pipeline with the context of the
// command that needed the connection): they write nothing to wait for.
func connSetup(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		switch c.Name() {
		case "hello", "auth", "select", "client", "readonly":
		default:
			return false
		}
	}
	return true
}
