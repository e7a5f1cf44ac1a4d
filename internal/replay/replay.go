// Package replay sends captured webhook bodies to an ingest URL again: signed
// like Meta signs them, with bounded concurrency and rate, retries the way
// Meta retries, progress while it runs and a summary at the end.
//
// Inputs are Sources (files, directories, JSONL, a reader, the JetStream
// capture). Every body is checked before it is sent; bodies that are not
// webhooks count as failures and never stop the rest.
package replay

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// Item is one webhook body read from an input.
type Item struct {
	// Source says where the body came from: "file:line", "stdin:line" or
	// "WEBHOOKS:seq" for the capture stream.
	Source string
	// Body is sent as is: the signature covers exactly these bytes.
	Body []byte
	// Path is the ingest path the capture recorded the body on
	// ("/webhook" or "/webhook/onprem"). Empty when the input does not say;
	// then the body's shape decides.
	Path string
	// Err says why the body could not be read; the item counts as a failure.
	Err error
}

// Source reads bodies in order and hands each to emit. emit returns an error
// only when the replay is stopping; Read must then return that error.
type Source interface {
	Read(ctx context.Context, emit func(Item) error) error
}

// Counter is implemented by Sources that know how many bodies they hold
// before reading them, so that progress can show a total.
type Counter interface {
	Count() int
}

// Limiter paces requests; *rate.Limiter implements it.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Config says where and how to replay. The zero value of each optional
// field has a sensible default (see setDefaults).
type Config struct {
	// Target receives WhatsApp Cloud API, Messenger and Instagram bodies.
	Target string
	// OnPremTarget receives On-Premises bodies (default: Target + "/onprem").
	OnPremTarget string
	// Secret signs every body (X-Hub-Signature-256). Required unless DryRun.
	Secret []byte
	// OnPremSecret goes in the X-Onprem-Secret header of On-Premises bodies.
	OnPremSecret string
	// OnPremWABAID is the WABA id ingest assigns On-Premises touches; only
	// dry-run output uses it.
	OnPremWABAID string

	Concurrency int     // parallel requests (default 4)
	Limiter     Limiter // paces every request, retries included; nil: unlimited
	Retries     int     // extra attempts on 5xx and connection errors
	// Backoff returns the wait before retry n (1-based); default DefaultBackoff.
	Backoff func(n int) time.Duration
	Timeout time.Duration // per request (default 10s)
	Client  *http.Client  // default: a client that does not follow redirects

	// DryRun sends nothing and writes one JSON line per body to Out.
	DryRun bool
	Out    io.Writer

	// Progress receives the progress display (nil: none). Terminal selects
	// a bar redrawn in place over plain lines every ProgressEvery.
	Progress      io.Writer
	Terminal      bool
	ProgressEvery time.Duration
	// MaxFailures is how many failures the summary lists (default 10).
	MaxFailures int
}

func (c *Config) setDefaults() {
	if c.Concurrency < 1 {
		c.Concurrency = 4
	}
	if c.OnPremTarget == "" {
		c.OnPremTarget = OnPremURL(c.Target)
	}
	if c.Backoff == nil {
		c.Backoff = DefaultBackoff(time.Second)
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			// A redirect means a wrong -target; following it would turn the
			// POST into a GET or send the body somewhere unexpected.
			return http.ErrUseLastResponse
		}}
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 5 * time.Second
		if c.Terminal {
			c.ProgressEvery = 200 * time.Millisecond
		}
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = 10
	}
}

// Run replays every body of sources, in order of reading, and returns the
// summary. The error is non-nil when a source failed as a whole (the
// capture stream is unreachable, say) or ctx ended; the summary then covers
// what was done until then. Failed bodies are in the summary, not the error.
func Run(ctx context.Context, cfg Config, sources []Source) (*Summary, error) {
	cfg.setDefaults()
	if !cfg.DryRun && len(cfg.Secret) == 0 {
		return nil, errors.New("replay: no app secret to sign with")
	}
	workers := cfg.Concurrency
	if cfg.DryRun {
		// One worker keeps the output lines in input order.
		workers = 1
	}
	sum := newSummary(cfg.MaxFailures, cfg.DryRun)
	prog := newProgress(cfg.Progress, cfg.Terminal, cfg.ProgressEvery, sum)
	if total, ok := countAll(sources); ok {
		prog.setTotal(total)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	items := make(chan Item, 2*workers)
	var readErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(items)
		readErr = readAll(ctx, sources, items, prog)
	})
	h := newHandler(&cfg)
	var workersWG sync.WaitGroup
	for range workers {
		workersWG.Go(func() {
			for it := range items {
				sum.add(it.Source, h.handle(ctx, it))
			}
		})
	}
	progDone := make(chan struct{})
	wg.Go(func() { prog.run(progDone) })
	workersWG.Wait()
	close(progDone)
	wg.Wait()
	sum.Elapsed = prog.elapsed()
	if readErr == nil {
		readErr = ctx.Err()
	}
	return sum, readErr
}

// readAll feeds the items of every source into items, in order.
func readAll(ctx context.Context, sources []Source, items chan<- Item, prog *progress) error {
	emit := func(it Item) error {
		select {
		case items <- it:
			prog.read()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, s := range sources {
		if err := s.Read(ctx, emit); err != nil {
			return err
		}
	}
	prog.readDone()
	return nil
}

// countAll adds up the sources' counts, if every source knows its count.
func countAll(sources []Source) (int, bool) {
	n := 0
	for _, s := range sources {
		c, ok := s.(Counter)
		if !ok {
			return 0, false
		}
		n += c.Count()
	}
	return n, true
}
