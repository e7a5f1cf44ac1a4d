// Command replay sends captured Meta webhook bodies (files, JSONL, stdin or
// the JetStream capture) to ingest again, signed as Meta signs them. Run it
// with -help for the flags and examples.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/buildinfo"
	"github.com/ctmpipe/ctmpipe/internal/localcreds"
	"github.com/ctmpipe/ctmpipe/internal/replay"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/term"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // some body failed, or an input could not be read
	exitUsage  = 2
)

func main() {
	if buildinfo.Asked(os.Args[1:]) {
		fmt.Println(buildinfo.Line("replay"))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tty := term.IsTerminal(int(os.Stderr.Fd()))
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr, tty))
}

// run returns the exit status rather than an error: replay's callers
// (scripts, CI) branch on 1 "some bodies failed" versus 2 "wrong usage".
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer, tty bool) int {
	cfg, err := parseConfig(args, getenv, time.Now())
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "replay: %v\nRun replay -help for usage.\n", err)
		return exitUsage
	}
	sources, err := inputs(cfg, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "replay: %v\n", err)
		return exitUsage
	}
	if cfg.FromCapture {
		url, creds, found, err := localcreds.NATS(cfg.NATSURL, cfg.DataDir)
		if err != nil {
			fmt.Fprintf(stderr, "replay: %v\n", err)
			return exitFailed
		}
		nc, err := nats.Connect(url, append(creds, nats.Name("ctmpipe-replay"))...)
		if err != nil {
			fmt.Fprintf(stderr, "replay: connect to NATS: %v (%s)\n", err, localcreds.Hint(cfg.DataDir, found))
			return exitFailed
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			fmt.Fprintf(stderr, "replay: jetstream: %v\n", err)
			return exitFailed
		}
		sources = append(sources, &replay.Capture{JS: js, From: cfg.From, Until: cfg.Until})
	}

	rc := replay.Config{
		Target:       cfg.Target,
		OnPremTarget: cfg.OnPremTarget,
		Secret:       cfg.Secret,
		OnPremSecret: cfg.OnPremSecret,
		OnPremWABAID: cfg.OnPremWABAID,
		Concurrency:  cfg.Concurrency,
		Limiter:      replay.NewLimiter(cfg.Rate),
		Retries:      cfg.Retries,
		Backoff:      replay.DefaultBackoff(cfg.Backoff),
		Timeout:      cfg.Timeout,
		DryRun:       cfg.DryRun,
		Out:          stdout,
		Terminal:     tty,
		MaxFailures:  cfg.MaxFailures,
	}
	if !cfg.DryRun {
		// Dry-run output goes to stdout; a bar on the same screen would
		// tangle with it.
		rc.Progress = stderr
	}
	sum, err := replay.Run(ctx, rc, sources)
	if sum != nil {
		sum.WriteTo(stderr)
	}
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "replay: interrupted")
		return exitFailed
	case err != nil:
		fmt.Fprintf(stderr, "replay: %v\n", err)
		return exitFailed
	case sum.Failed > 0:
		return exitFailed
	}
	return exitOK
}

// inputs opens the positional inputs, in order. A path that does not exist
// is a usage error: better to stop before sending anything.
func inputs(cfg config, stdin io.Reader) ([]replay.Source, error) {
	var out []replay.Source
	for _, in := range cfg.Inputs {
		if in == "-" {
			out = append(out, replay.Reader("stdin", stdin))
			continue
		}
		s, err := replay.Path(in)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
