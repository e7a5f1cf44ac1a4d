// Package services is the composition root of what runs beside the webhook
// receiver (internal/ingest): the admin listener's intake, business
// registry API, trail and dead-letter API and console, forwarding's
// enqueuer and forwarder, and the automatic events' publisher. cmd/ingest
// and cmd/all-in-one build it and hand the receiver the few interfaces it
// calls (ingest.Enqueuer, ingest.AutoPublisher, ingest.Policies), so that
// the receiver knows webhooks and nothing else (docs/architecture.md).
package services

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/internal/audit"
	"github.com/ctmpipe/ctmpipe/internal/autoevents"
	"github.com/ctmpipe/ctmpipe/internal/console"
	"github.com/ctmpipe/ctmpipe/internal/forward"
	"github.com/ctmpipe/ctmpipe/internal/ingest"
	"github.com/ctmpipe/ctmpipe/internal/intake"
	"github.com/ctmpipe/ctmpipe/internal/notify"
	"github.com/ctmpipe/ctmpipe/internal/opsapi"
	"github.com/ctmpipe/ctmpipe/internal/registryapi"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// Deps are what Services are built on, opened and closed by the binary
// (cmd/ingest, cmd/all-in-one).
type Deps struct {
	Log *zap.Logger
	// NATS is the connection of capture, the intake and forwarding; nil
	// when none of them is on (Config.Validate requires NATS_URL then).
	NATS       *nats.Conn
	Redis      redis.UniversalClient // the registry's store: the contexts' Redis
	Registerer prometheus.Registerer
	// Resumer ends a business's pause for the registry API's resume
	// (sender.Resumer); nil: resume answers 503.
	Resumer registryapi.Resumer
}

// Services are what runs next to the receiver: the intake and the registry
// API on the admin listener, forwarding's enqueuer (pass Enqueuer() as
// ingest.Deps.Forward) and its forwarder (Run).
type Services struct {
	cfg       Config
	log       *zap.Logger
	intake    *intake.Handler
	enqueuer  *forward.Enqueuer
	forwarder *forward.Forwarder
	auto      *autoevents.Publisher
	registry  registryapi.Deps
	cache     *registry.Cache // the registry as the attribution policy and the automatic events' switch read it
	policies  *RegistryPolicies
	ops       opsapi.Deps
	audit     *audit.Store
	notifier  *notify.Publisher // nil: notifications off
	deliverer *notify.Deliverer
}

// NewServices builds the services cfg turns on. The registry API is always
// built: without REGISTRY_KEY it stores businesses but refuses their
// secrets, naming the setting.
func New(cfg Config, d Deps) (*Services, error) {
	s := &Services{cfg: cfg, log: d.Log}
	var err error
	if s.intake, err = intake.New(cfg.Intake, intake.Deps{Log: d.Log, NATS: d.NATS, Registerer: d.Registerer}); err != nil {
		return nil, err
	}
	if cfg.Forward.Enabled() {
		if d.NATS == nil {
			return nil, errors.New("services: forwarding needs a NATS connection")
		}
		js, err := jetstream.New(d.NATS)
		if err != nil {
			return nil, fmt.Errorf("services: jetstream: %w", err)
		}
		if s.enqueuer, err = forward.NewEnqueuer(js, cfg.Forward); err != nil {
			return nil, err
		}
		if s.forwarder, err = forward.New(js, cfg.Forward, d.Log, d.Registerer); err != nil {
			return nil, err
		}
	}
	if cfg.AutoEvents.On && d.NATS == nil {
		return nil, errors.New("services: automatic events need a NATS connection")
	}
	if d.Redis == nil {
		return nil, errors.New("services: Deps.Redis is required (the business registry)")
	}
	keys, err := registry.ParseKeyring(cfg.RegistryKey)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", registry.KeyEnv, err)
	}
	store := registry.NewStore(d.Redis, keys)
	// The registry as ingest reads it when it stores a click (the
	// attribution policy) and, with NATS, for the automatic events' switch.
	rlog := d.Log.With(zap.String("component", "registry_cache"))
	s.cache = registry.NewCache(store, registry.CacheConfig{
		OnError: registry.ErrorEvery(time.Minute, func(err error) {
			rlog.Warn("registry poll failed (logged at most once a minute); records are served from memory", zap.Error(err))
		}),
	})
	s.policies = &RegistryPolicies{Registry: s.cache, Log: d.Log.With(zap.String("component", "attribution_policy"))}
	// Automatic events are reported for every business with
	// AUTOMATIC_EVENTS=on, else for those whose registry record says
	// automatic_events: true; publishing them needs NATS.
	if d.NATS != nil {
		js, err := jetstream.New(d.NATS)
		if err != nil {
			return nil, fmt.Errorf("services: jetstream: %w", err)
		}
		alog := d.Log.With(zap.String("component", "automatic_events"))
		sw := &autoevents.RegistrySwitch{Config: cfg.AutoEvents, Registry: s.cache,
			OnUnreadable: func(id string, err error) {
				alog.Error("automatic events of this business are not reported: its registry record cannot be read here (set REGISTRY_KEY, the senders' key, on ingest)",
					zap.String("business_id", id), zap.Error(err))
			}}
		if s.auto, err = autoevents.NewPublisher(js, sw, d.Registerer); err != nil {
			return nil, err
		}
	}
	if cfg.Notify.Enabled() {
		if d.NATS == nil {
			return nil, errors.New("services: notifications need a NATS connection")
		}
		js, err := jetstream.New(d.NATS)
		if err != nil {
			return nil, fmt.Errorf("services: jetstream: %w", err)
		}
		if s.notifier, err = notify.NewPublisher(js, cfg.Notify); err != nil {
			return nil, err
		}
		if s.deliverer, err = notify.NewDeliverer(js, cfg.Notify, d.Log, d.Registerer); err != nil {
			return nil, err
		}
	}
	if d.Resumer != nil && s.notifier != nil {
		d.Resumer = notifyingResumer{next: d.Resumer, n: s.notifier, log: d.Log.With(zap.String("component", "notify"))}
	}
	s.registry = registryapi.Deps{
		Store: store,
		Datasets: capi.NewClient(capi.Config{
			BaseURL: cfg.GraphBase,
			Version: cfg.GraphVersion,
		}),
		Resumer:      d.Resumer,
		Health:       opsapi.Health{Redis: d.Redis},
		DefaultToken: cfg.CAPIAccessToken,
		Log:          d.Log.With(zap.String("component", "registry_api")),
	}
	// The event trail, dead letters and stats of the senders sharing this
	// Redis (and NATS, for the dead letters).
	s.audit = audit.NewStore(d.Redis, 0)
	s.ops = opsapi.Deps{Redis: d.Redis, Log: d.Log.With(zap.String("component", "ops_api"))}
	if d.NATS != nil {
		if s.ops.JS, err = jetstream.New(d.NATS); err != nil {
			return nil, fmt.Errorf("services: jetstream: %w", err)
		}
	}
	d.Log.Info("admin services configured",
		zap.Bool("intake", cfg.Intake.Enabled()),
		zap.Int("forward_destinations", len(cfg.Forward.URLs)),
		zap.Bool("automatic_events", cfg.AutoEvents.On),
		zap.Bool("registry_key_set", keys != nil),
		zap.Bool("capi_access_token_set", cfg.CAPIAccessToken != ""))
	return s, nil
}

// Enqueuer is forwarding's enqueuer for ingest.Deps.Forward, nil when
// forwarding is off.
func (s *Services) Enqueuer() ingest.Enqueuer {
	if s.enqueuer == nil {
		return nil
	}
	return enqueuer{s.enqueuer}
}

// enqueuer is forwarding's enqueuer as the receiver sees it: its errors
// wrap the receiver's.
type enqueuer struct{ e *forward.Enqueuer }

func (q enqueuer) Enqueue(ctx context.Context, body []byte, header http.Header) error {
	return wrapForwardErr(q.e.Enqueue(ctx, body, header))
}

// wrapForwardErr wraps forwarding's errors in the receiver's.
func wrapForwardErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, forward.ErrTooLarge):
		return fmt.Errorf("%w: %w", ingest.ErrForwardTooLarge, err)
	case errors.Is(err, forward.ErrEnqueue):
		return fmt.Errorf("%w: %w", ingest.ErrForwardQueue, err)
	}
	return err
}

// Policies is the attribution policy of each business for
// ingest.Deps.Policies, read from the registry (Run keeps its cache
// current).
func (s *Services) Policies() ingest.Policies { return s.policies }

// AutoPublisher is the automatic events' publisher for
// ingest.Deps.AutoEvents, nil without NATS.
func (s *Services) AutoPublisher() ingest.AutoPublisher {
	if s.auto == nil {
		return nil
	}
	return autoPublisher{s.auto}
}

// autoPublisher is the automatic events' publisher as the receiver sees it.
type autoPublisher struct{ p *autoevents.Publisher }

func (a autoPublisher) Publish(ctx context.Context, events []webhook.AutomaticEvent) (ingest.AutoResult, error) {
	r, err := a.p.Publish(ctx, events)
	out := ingest.AutoResult{Published: r.Published, Duplicates: r.Duplicates, Disabled: r.Disabled, NoClick: r.NoClick}
	for _, x := range r.Invalid {
		out.Invalid = append(out.Invalid, ingest.AutoInvalid{EventID: x.EventID, Reason: x.Reason})
	}
	return out, err
}

// Mount registers the intake (it authenticates with INTAKE_TOKEN itself,
// and answers 404 when off), the registry and ops APIs (behind ADMIN_TOKEN)
// and the operator console (/console, which logs in with ADMIN_TOKEN and reads
// everything from adm's own API) on adm.
func (s *Services) Mount(adm *admin.Server) {
	adm.Echo().POST(intake.Path, echo.WrapHandler(s.intake))
	// Every state-changing API request, the console's included, is
	// recorded with its actor: the middleware is in place before the
	// routes it wraps.
	adm.API().Use(audit.Middleware(s.audit, s.log.With(zap.String("component", "audit"))))
	audit.Register(adm.API(), s.audit)
	registryapi.Register(adm.API(), s.registry)
	opsapi.Register(adm.API(), s.ops)
	console.New(console.Config{Token: s.cfg.AdminToken, Log: s.log}, adm.Handler()).Register(adm.Echo())
}

// Run runs the forwarder, when forwarding is on, and keeps the registry
// cache of the attribution policies and automatic events current, until ctx is done; it returns once
// the posts in flight finished.
func (s *Services) Run(ctx context.Context) error {
	if s.cache != nil {
		done := make(chan struct{})
		go func() { defer close(done); _ = s.cache.Run(ctx) }()
		defer func() { <-done }()
	}
	if s.deliverer != nil {
		done := make(chan struct{})
		go func() { defer close(done); _ = s.deliverer.Run(ctx) }()
		defer func() { <-done }()
	}
	if s.forwarder == nil {
		<-ctx.Done()
		return nil
	}
	return s.forwarder.Run(ctx)
}

// notifyingResumer tells business.resumed when a resume ended a pause.
type notifyingResumer struct {
	next registryapi.Resumer
	n    *notify.Publisher
	log  *zap.Logger
}

// Resume implements registryapi.Resumer. A notification not stored is
// logged: the resume itself is done.
func (r notifyingResumer) Resume(ctx context.Context, businessID string) (registryapi.ResumeResult, error) {
	res, err := r.next.Resume(ctx, businessID)
	if err != nil || !res.WasPaused {
		return res, err
	}
	if nerr := r.n.Notify(ctx, notify.Resumed(businessID, time.Now())); nerr != nil {
		r.log.Warn("notification not stored", zap.String("type", notify.TypeBusinessResumed), zap.String("business_id", businessID), zap.Error(nerr))
	}
	return res, nil
}
