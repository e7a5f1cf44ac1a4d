// Command loadgen is the load harness: it drives ingest with signed webhooks
// and the sender with conversions, measures the bare baselines in the same
// run, and prints ratios. See BENCHMARKS.md and scripts/bench-*.sh.
//
//	loadgen ingest    -url http://127.0.0.1:8080/webhook -bare-url http://127.0.0.1:8081/webhook
//	loadgen bare      -addr 127.0.0.1:8081
//	loadgen nats      -addr 127.0.0.1:4222 -store DIR
//	loadgen sender    -nats-url nats://... -redis redis://... -sender-bin ./bin/sender
//	loadgen redis-mem -redis redis://... -n 1000000
//	loadgen store     -all-in-one-bin ./bin/all-in-one -n 1000000
//	loadgen ingest-server -cpuprofile ingest.prof   (ingest's env config)
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

	"github.com/ctmpipe/ctmpipe/internal/buildinfo"
)

func main() {
	if buildinfo.Asked(os.Args[1:]) {
		fmt.Println(buildinfo.Line("loadgen"))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// commands maps each subcommand to its function.
var commands = map[string]func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error{
	"ingest":    runIngest,
	"bare":      runBare,
	"nats":      runNATS,
	"sender":    runSender,
	"redis-mem": runRedisMem,
	"store":     runStore,
	// ingest-server is ingest with a CPU profile, for scripts/bench-profile.sh.
	"ingest-server": runIngestServer,
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, "usage: loadgen ingest|bare|nats|sender|redis-mem|store|ingest-server [flags]  (loadgen <command> -h for its flags)")
		return nil
	}
	if len(args) == 0 || commands[args[0]] == nil {
		fmt.Fprintln(stderr, "usage: loadgen ingest|bare|nats|sender|redis-mem|store|ingest-server [flags]  (loadgen <command> -h for its flags)")
		return flag.ErrHelp
	}
	return commands[args[0]](ctx, args[1:], getenv, stdout)
}

// newFlags returns a flag set for a subcommand that prints its usage to
// stderr and returns errors instead of exiting.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("loadgen "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}
