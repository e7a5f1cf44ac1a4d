// Command publish puts conversion messages on NATS JetStream as an order system
// would: each JSON line of the inputs goes to subject conversions.<channel>
// with Nats-Msg-Id set to its event_id, and waits for JetStream's ack.
//
// It exists so that the walk-through needs nothing installed but Go; order
// systems use any NATS client the same way.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ctmpipe/ctmpipe/internal/buildinfo"
	"github.com/ctmpipe/ctmpipe/internal/localcreds"
	"github.com/ctmpipe/ctmpipe/internal/settings"
	"github.com/ctmpipe/ctmpipe/internal/tracing"
	"github.com/ctmpipe/ctmpipe/pkg/conversion"
)

func main() {
	if buildinfo.Asked(os.Args[1:]) {
		fmt.Println(buildinfo.Line("publish"))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "publish:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `Usage: publish [-nats-url URL] [-data-dir DIR] [-timeout D] FILE.jsonl|- ...

Publishes conversions (one JSON object a line, the message of docs/contract.md)
to NATS JetStream: subject conversions.<channel>, header Nats-Msg-Id = event_id,
so that publishing the same file twice stores each conversion once (within the
stream's duplicate window; the sender's ledger catches later repeats).
Each line is checked against the contract first (pkg/conversion, the same
check the sender makes); a line that breaks it is reported with file:line and
the rule, and skipped. The exit status is 1 if any line failed.
With OTEL_EXPORTER_OTLP_ENDPOINT set, each file is a trace span whose context
every message carries to the sender (docs/tracing.md).

Example (against go run ./cmd/all-in-one):
  go run ./cmd/publish examples/conversions.jsonl
  go run ./cmd/publish -check=false broken.jsonl   # see the sender dead-letter them

Flags:
`

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := getenv("NATS_URL")
	if def == "" {
		def = nats.DefaultURL
	}
	url := fs.String("nats-url", def, "NATS server `URL` (env NATS_URL; -nats is the old spelling)")
	dataDir := fs.String("data-dir", envOr(getenv, "DATA_DIR", localcreds.DefaultDataDir), "the all-in-one's data `directory` (env DATA_DIR), whose credentials.json logs in to a NATS on this machine")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for each JetStream ack")
	check := fs.Bool("check", true, "check each line against the contract; -check=false publishes any line with an event_id and a channel (to see the sender's dead letters)")
	printUsage := func(w io.Writer) { fmt.Fprint(w, usage); fs.SetOutput(w); fs.PrintDefaults() }
	fs.Usage = func() {} // printed below: asked for (-h) to stdout, after a mistake to stderr
	if err := fs.Parse(settings.RenameFlags(args, map[string]string{"nats": "nats-url"})); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return err
		}
		fmt.Fprintln(stderr, err)
		printUsage(stderr)
		return errUsage
	}
	if fs.NArg() == 0 {
		printUsage(stderr)
		return errUsage
	}
	natsURL, creds, found, err := localcreds.NATS(*url, *dataDir)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(natsURL, append(creds, nats.Name("ctmpipe-publish"))...)
	if err != nil {
		return fmt.Errorf("connect to NATS: %w (is the pipeline running? set -nats-url or NATS_URL; %s)", err, localcreds.Hint(*dataDir, found))
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// OTEL_EXPORTER_OTLP_ENDPOINT (env only) turns traces on: each file is
	// a span, and each message carries its context to the sender.
	traceStop, err := tracing.Setup(ctx, "ctmpipe-publish", getenv)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := traceStop(sctx); err != nil {
			fmt.Fprintf(stderr, "traces not flushed to the OTLP collector: %v\n", err)
		}
	}()
	var ok, dups, failed int
	for _, name := range fs.Args() {
		r := stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", name, err)
				failed++
				continue
			}
			defer f.Close()
			r = f
		}
		o, d, f := publishAll(ctx, js, name, r, *timeout, *check, stdout)
		ok, dups, failed = ok+o, dups+d, failed+f
	}
	// A duplicate (JetStream's PubAck.Duplicate: the same Nats-Msg-Id within
	// the stream's window) was stored before and is not stored again.
	fmt.Fprintf(stdout, "published %d, duplicates %d (already stored, not stored again), failed %d\n", ok, dups, failed)
	if failed > 0 {
		return fmt.Errorf("%d line(s) not published", failed)
	}
	return nil
}

// publishAll publishes every line of r and reports each failure as name:line.
func publishAll(ctx context.Context, js jetstream.JetStream, name string, r io.Reader, timeout time.Duration, check bool, out io.Writer) (ok, dups, failed int) {
	ctx, span := tracing.Tracer().Start(ctx, "publish.file", trace.WithSpanKind(trace.SpanKindProducer))
	defer func() {
		span.SetAttributes(attribute.Int(tracing.AttrEventCount, ok+dups+failed), attribute.Int(tracing.AttrAccepted, ok),
			attribute.Int(tracing.AttrDuplicates, dups))
		if failed > 0 {
			tracing.Fail(span, "lines not published")
		}
		span.End()
	}()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for line := 1; sc.Scan(); line++ {
		data := sc.Bytes()
		if len(data) == 0 {
			continue
		}
		m, err := conversion.Parse(data) // with an error, m holds what could be read
		if err != nil && (check || !conversion.IsChannel(m.Channel) || m.EventID == "") {
			// The error names the field and the rule, never a value.
			fmt.Fprintf(out, "%s:%d: not a valid conversion: %v\n", name, line, err)
			failed++
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		msg := &nats.Msg{Subject: "conversions." + m.Channel, Data: data}
		tracing.Inject(ctx, msg)
		ack, err := js.PublishMsg(pctx, msg, jetstream.WithMsgID(m.EventID))
		cancel()
		if err != nil {
			fmt.Fprintf(out, "%s:%d: publish: %v\n", name, line, err)
			failed++
			continue
		}
		if ack.Duplicate {
			fmt.Fprintf(out, "%s:%d: %s → %s seq %d (duplicate, already stored)\n", name, line, m.EventID, ack.Stream, ack.Sequence)
			dups++
			continue
		}
		fmt.Fprintf(out, "%s:%d: %s → %s seq %d\n", name, line, m.EventID, ack.Stream, ack.Sequence)
		ok++
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(out, "%s: read: %v\n", name, err)
		failed++
	}
	return ok, dups, failed
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}
