// Package sender is the sender service: it consumes conversions from the
// JetStream stream CONVERSIONS, joins each to its ad-click context, maps it to
// a Conversions API event, posts batches per dataset to Meta and acks a
// message only when its event was accepted, dead-lettered (stream DLQ) or is
// a known duplicate.
//
// # What is guaranteed
//
// Meta does not deduplicate business-messaging events, so the sender does,
// with a ledger in Redis (pkg/ledger) keyed by business and event_id:
//
//   - An event Meta accepted is never posted again for SENT_TTL (8 days,
//     longer than Meta's 7-day window): not after a redelivery, a restart, a
//     duplicate publish, a replay or a redrive. Before posting, the sender
//     claims the events with a lease (SEND_LEASE, longer than HTTP_TIMEOUT);
//     right after Meta's 200 it marks them sent, and only then acks.
//   - Nothing is lost: a message is acked only after its event was accepted,
//     after its dead letter was stored (publish acknowledged by JetStream), or
//     when the ledger says it was sent already. Everything else is handed back
//     (Nak, with a delay) and comes again.
//   - The one window that cannot be closed is between Meta's 200 and MarkSent
//     (a few milliseconds), and equally a response lost on the wire: there the
//     sender cannot know whether Meta has the events. Such a claim is never
//     released; when its lease runs out, the redelivered message finds it "in
//     doubt" and goes to dead letter in_doubt. It is never resent on its own:
//     an operator checks Events Manager and, if the event is missing, redrives
//     it with -force. So the crash window ends as an in_doubt dead letter, never
//     as a silent duplicate or a silent loss.
//
// A transport error after the request was written (capi.IsInDoubt) is handled
// the same way rather than retried on the same claim: a retry would turn
// every lost response into a duplicate conversion at Meta, and a duplicate
// cannot be taken back, while an in_doubt dead letter can be checked and
// redriven. Errors where Meta answered (a Graph error) or the request never
// left (connection refused) release the claim, so the retry is safe.
//
// If Redis is unreachable right after Meta's 200, MarkSent is retried for up
// to SEND_LEASE; the message is acked either way (its event is at Meta), and
// the claim left unmarked turns a later duplicate publish into an in_doubt
// dead letter rather than a second send. If Redis loses the ledger (a restart
// without persistence), events acked before are not redelivered, so nothing
// is doubled; only a new duplicate publish of an event sent before the loss
// could be posted again. Run Redis with persistence (AOF) in production.
package sender

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/notify"
	"github.com/ctmpipe/ctmpipe/internal/startup"
	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/ledger"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// Failpoints: CTM_FAILPOINT values (tests only) at which the sender stops:
// right after marking a batch sent and before acking it; or after claiming
// a batch, before marking its post and posting it.
const (
	FailpointAfterMarkSent = "after-mark-sent"
	FailpointBeforePost    = "before-post"
)

// poster posts events to a dataset: *capi.Client, or DryRun.
type poster interface {
	Send(ctx context.Context, datasetID, token string, events []capi.Event) (capi.Response, error)
}

// lookup finds the contexts of a batch in one round trip (*attribution.Store).
type lookup interface {
	Lookup(ctx context.Context, keys []attribution.Key) ([]*attribution.Context, error)
}

// Deps are the sender's connections, opened and closed by the caller.
type Deps struct {
	Log   *zap.Logger           // required
	JS    jetstream.JetStream   // required; the caller drains its connection after Run
	Store *attribution.Store    // required: the contexts
	Redis redis.UniversalClient // required: the ledger and the dataset cache
	// Poster posts the events; nil builds a capi.Client from the Config.
	Poster poster
	// Datasets resolves datasets of businesses not in CAPI_DATASETS_FILE;
	// nil uses the capi.Client built for a nil Poster, and with a Poster
	// given (a dry run) such businesses get "dryrun-<business_id>".
	Datasets DatasetAPI
	// Registry is the business registry (NewRegistry); nil: businesses come
	// from CAPI_DATASETS_FILE and the defaults alone. Run keeps it current
	// (Cache.Run): do not run it elsewhere.
	Registry *registry.Cache
	// Registerer takes the sender_* metrics; nil keeps them private.
	Registerer prometheus.Registerer
	// Now is the sender's clock; nil: time.Now. (Being moved to it part by
	// part: the version checks use it.)
	Now func() time.Time
	// Failpoint is called at the named failpoint when Config.Failpoint names
	// it (cmd/sender makes the process SIGKILL itself there).
	Failpoint func(name string)
}

// Service is the sender. New builds it, Run runs it.
type Service struct {
	cfg      Config
	log      *zap.Logger
	js       jetstream.JetStream
	store    lookup
	rdb      redis.UniversalClient
	ledger   *ledger.Ledger
	lb       *ledgerBatch // the ledger, pipelined across requests
	poster   poster
	datasets *datasets
	biz      *businesses
	m        *metrics
	failAt   func(string)
	pipe     *pipeline
	instance string
	seq      atomic.Uint64
	okAt     sync.Map // business → when this sender last stored its ok key (park.go)
	registry *registry.Cache
	heldLog  sync.Map      // business → the reason last logged for holding it
	tw       *trail.Writer // the event trail and counters (trail.go)
	trailOff bool          // the store cannot keep the trail (set in Run before any settle)
	now      func() time.Time

	reqSeq    atomic.Uint64     // numbers the Graph requests of the attempt log (attempts.go)
	notifier  *notify.Publisher // nil: notifications off (notify.go)
	deliverer *notify.Deliverer

	versionWarnMu sync.Mutex
	versionWarnAt time.Time // when a version warning was last logged
}

// New checks cfg and builds a Service over deps.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Log == nil || deps.JS == nil || deps.Store == nil || deps.Redis == nil {
		return nil, errors.New("sender: Log, JS, Store and Redis are required")
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("sender: metrics: %w", err)
	}
	if deps.Registry != nil && deps.Registerer != nil {
		// Which registry change this sender has seen: a change stored at
		// version v is in effect on every sender whose gauge is >= v.
		c := deps.Registry
		if err := deps.Registerer.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sender_registry_version",
			Help: "Version of the business registry this sender's cache has caught up with (-1 before its first poll); a change is in effect here once it reaches the change's version.",
		}, func() float64 { return float64(c.Version()) })); err != nil {
			return nil, fmt.Errorf("sender: metrics: %w", err)
		}
	}
	secrets, err := cfg.appSecrets()
	if err != nil {
		return nil, err
	}
	p, api := deps.Poster, deps.Datasets
	if p == nil {
		c := capi.NewClient(capi.Config{
			BaseURL: cfg.GraphBase, Version: cfg.GraphVersion, AppSecret: cfg.AppSecret, AppSecrets: secrets,
			PartnerAgent: cfg.PartnerAgent, TestEventCode: cfg.TestEventCode,
			HTTPClient: &http.Client{Timeout: cfg.HTTPTimeout},
		})
		p = c
		if api == nil {
			api = c
		}
	}
	var reg BusinessSource
	if deps.Registry != nil {
		reg = deps.Registry
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	s := &Service{
		cfg: cfg, log: deps.Log.With(zap.String("component", "sender")), js: deps.JS,
		store: deps.Store, rdb: deps.Redis, ledger: ledger.New(deps.Redis, cfg.SentTTL),
		poster: p, datasets: newDatasets(cfg, api, deps.Redis, reg), biz: newBusinesses(cfg),
		m: m, failAt: deps.Failpoint, instance: hex.EncodeToString(id[:]), registry: deps.Registry, now: deps.Now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.datasets.onUnusable = func(err error) {
		s.log.Error("the store refuses the business registry's commands: businesses come from CAPI_DATASETS_FILE and the defaults alone", zap.Error(err))
	}
	if err := s.newNotify(deps.Registerer); err != nil {
		return nil, err
	}
	s.pipe = newPipeline(s)
	s.lb = newLedgerBatch(s.ledger, cfg.SendLease)
	s.tw = trail.NewWriter(cfg.SentTTL)
	s.lb.carry = s.tw.Carry
	return s, nil
}

// Run creates the streams and the consumer when absent and processes
// conversions until ctx is done. Then it stops fetching and starting
// requests, hands back what is queued, lets the requests in flight finish
// within SHUTDOWN_TIMEOUT (at least HTTP_TIMEOUT, so that a request already
// written gets its answer) and returns nil. The caller drains the NATS
// connection afterwards.
func (s *Service) Run(ctx context.Context) error {
	cons, err := ensureStreams(ctx, s.js, s.log, s.cfg.StreamReplicas, s.cfg.MaxAckPending, s.cfg.AckWait)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("sender: %w", err)
	}
	// Held messages are kept with InProgress every AckWait/3 (the
	// consumer's, which an operator may have changed).
	keepAlive := s.cfg.AckWait / 3
	if info := cons.CachedInfo(); info != nil && info.Config.AckWait > 0 {
		keepAlive = info.Config.AckWait / 3
	}
	s.notifyVersion(ctx, startup.GraphVersion(s.log, s.cfg.GraphVersion, s.now()))
	s.log.Info("sender started", zap.Int("batch_size", s.cfg.BatchSize), zap.Int("workers", s.cfg.Workers),
		zap.Int("max_inflight", s.cfg.MaxInflight), zap.Int("max_inflight_per_business", s.cfg.MaxInflightPerBusiness),
		zap.Duration("linger", s.cfg.Linger), zap.Duration("linger_backlog", s.cfg.LingerBacklog), zap.Int64("queue_memory", s.cfg.QueueMemory),
		zap.Duration("context_wait", s.cfg.ContextWait), zap.Strings("require_referral", s.cfg.RequireReferral),
		zap.Duration("send_lease", s.cfg.SendLease), zap.Duration("http_timeout", s.cfg.HTTPTimeout),
		zap.Duration("shutdown_timeout", s.cfg.ShutdownTimeout), zap.Bool("access_token_set", s.cfg.AccessToken != ""),
		zap.Int("datasets_mapped", len(s.cfg.Datasets)), zap.Bool("app_secret_set", s.cfg.AppSecret != ""),
		zap.Bool("dry_run", s.cfg.DryRunFile != ""), zap.Bool("registry", s.registry != nil),
		zap.Bool("registry_key_set", s.cfg.RegistryKey != ""))
	// Work already fetched finishes on a context of its own, cut off
	// SHUTDOWN_TIMEOUT after ctx ends (pipeline.run).
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var wg, keeper sync.WaitGroup
	kctx, stopKeepAlive := context.WithCancel(wctx)
	keeper.Go(func() { s.pipe.keepAlive(kctx, keepAlive) })
	// The trail's own flushes stop last, so the final settlements' writes
	// go out too.
	pctx, cancelProbe := context.WithTimeout(ctx, 2*time.Second)
	canCount := trail.CanCount(pctx, s.rdb)
	cancelProbe()
	if !canCount {
		s.log.Warn("the store keeps no hashes: this sender keeps no event trail and no counters (GET /v1/events, /v1/stats, business health)")
		s.tw.CountsOff()
		s.trailOff = true
	}
	var trailer sync.WaitGroup
	tctx, stopTrail := context.WithCancel(wctx)
	trailer.Go(func() {
		s.tw.Run(tctx, s.rdb, func(err error) { s.log.Debug("event trail not written", zap.Error(err)) })
	})
	for range s.cfg.Workers {
		wg.Go(func() { s.work(ctx, wctx, cons) })
	}
	wg.Go(func() { s.pollPending(ctx, cons) })
	wg.Go(func() { s.unparkLoop(ctx) })
	wg.Go(func() { s.resumeLoop(ctx) })
	wg.Go(func() { _ = s.deliverer.Run(ctx) })
	if s.registry != nil {
		wg.Go(func() { _ = s.registry.Run(ctx) })
	}
	wg.Go(func() { s.pipe.run(ctx, wctx, cancel) })
	wg.Wait()
	stopKeepAlive()
	keeper.Wait()
	stopTrail()
	trailer.Wait()
	s.log.Info("sender stopped", zap.Int("peak_inflight", s.pipe.peakInflight()))
	return nil
}

// Ready reports whether NATS and Redis are reachable (for /readyz).
func (s *Service) Ready(ctx context.Context) error {
	if st := s.js.Conn().Status(); st != nats.CONNECTED {
		return fmt.Errorf("sender: nats %s", st)
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("sender: redis: %w", err)
	}
	// Fewer replicas than REDIS_MIN_REPLICAS: no claim would be confirmed.
	if err := s.cfg.Replicas.Ready(ctx, s.rdb); err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	return nil
}

// fetchWait bounds how long a fetch waits for its batch to fill. The
// queues gather events for LINGER anyway, and in a backlog a fetch fills at
// once, so a long wait only adds to publish → POST: at 1,000/s a fetch of
// 1,000 waited out 100 ms every time, on top of LINGER (BENCHMARKS.md,
// "Many businesses", for the A/B of 100 ms against this).
const fetchWait = 20 * time.Millisecond

// work is one fetch loop: it fetches while the pipeline has room and hands
// each fetch to intake, on wctx, which outlives ctx by SHUTDOWN_TIMEOUT.
func (s *Service) work(ctx, wctx context.Context, cons jetstream.Consumer) {
	backoff := 50 * time.Millisecond
	msgs := make([]jetstream.Msg, 0, s.cfg.BatchSize)
	for ctx.Err() == nil {
		n := s.pipe.admit(ctx, s.cfg.BatchSize)
		if n == 0 {
			continue
		}
		msgs = msgs[:0]
		mb, err := cons.Fetch(n, jetstream.FetchMaxWait(fetchWait))
		if err == nil {
			for m := range mb.Messages() {
				msgs = append(msgs, m)
			}
			err = mb.Error()
		}
		if len(msgs) > 0 {
			var pending uint64
			if md, err := msgs[len(msgs)-1].Metadata(); err == nil {
				pending = md.NumPending
			}
			s.pipe.noteBacklog(n, len(msgs), pending)
			s.intake(wctx, msgs)
			backoff = 50 * time.Millisecond
			continue
		}
		s.pipe.noteBacklog(n, 0, 0)
		if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			s.log.Debug("fetch failed", zap.Error(err))
			select { // NATS is away: do not spin
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}

// pollPending updates the consumer gauges every few seconds.
func (s *Service) pollPending(ctx context.Context, cons jetstream.Consumer) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	var near bool
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if info, err := cons.Info(ictx); err == nil {
			s.m.pending.Set(float64(info.NumPending) + float64(info.NumAckPending))
			near = s.noteAckPending(info.NumAckPending, info.Config.MaxAckPending, near)
		}
		cancel()
		s.sweepOK(s.now())
		s.pipe.sweepAway(s.now())
		s.m.paused.Set(float64(s.biz.pausedCount()))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// owner returns a ledger owner unique to one claim: the process's random id
// and a counter.
func (s *Service) owner() string {
	return s.instance + "-" + strconv.FormatUint(s.seq.Add(1), 10)
}

// nearMaxAckPending is the share of MaxAckPending past which the sender
// warns: at MaxAckPending JetStream stops delivering to the consumer, and
// every business waits, not only those whose messages fill it.
const nearMaxAckPending = 0.8

// noteAckPending sets the ack-pending gauges and logs when the consumer
// comes near MaxAckPending (once, until it is well below again). Messages
// of paused businesses wait there: a business paused long enough with enough
// traffic fills it (README, "Operating").
func (s *Service) noteAckPending(ackPending, maxAckPending int, near bool) bool {
	s.m.ackPending.Set(float64(ackPending))
	s.m.maxAckPending.Set(float64(maxAckPending))
	if maxAckPending <= 0 {
		return false
	}
	share := float64(ackPending) / float64(maxAckPending)
	switch {
	case !near && share >= nearMaxAckPending:
		s.log.Warn("consumer near MaxAckPending: when it is reached, JetStream stops delivering and every business waits; check for paused businesses (sender_businesses_paused)",
			zap.Int("ack_pending", ackPending), zap.Int("max_ack_pending", maxAckPending))
		return true
	case near && share < nearMaxAckPending/2:
		s.log.Info("consumer well below MaxAckPending again",
			zap.Int("ack_pending", ackPending), zap.Int("max_ack_pending", maxAckPending))
		return false
	}
	return near
}

func (s *Service) failpoint(name string) {
	if s.cfg.Failpoint == name && s.failAt != nil {
		s.failAt(name)
	}
}
