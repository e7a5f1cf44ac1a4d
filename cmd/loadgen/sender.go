package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/internal/loadgen"
	"github.com/ctmpipe/ctmpipe/internal/settings"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// runSender seeds contexts, starts a fake Graph API in this process and the
// sender binary pointed at it, and runs loadgen.SenderBench.
func runSender(ctx context.Context, args []string, _ func(string) string, stdout io.Writer) error {
	fs := newFlags("sender")
	natsURL := fs.String("nats-url", "nats://127.0.0.1:4222", "NATS URL (JetStream enabled; -nats is the old spelling)")
	redisURL := fs.String("redis", "redis://127.0.0.1:6379/0", "Redis URL for contexts and the sender's ledger")
	bin := fs.String("sender-bin", "./bin/sender", "sender binary to start (with GRAPH_API_BASE set to the fake Graph)")
	senderLog := fs.String("sender-log", "", "file for the sender's logs (default: a temp file)")
	n := fs.Int("n", 100000, "conversions per max-rate round")
	rounds := fs.Int("rounds", 3, "max-rate rounds of sender and raw baseline (medians are reported)")
	batch := fs.Int("batch", 1000, "fetch size of the raw loop, also given to the sender as BATCH_SIZE")
	rate := fs.Float64("rate", 1000, "fixed-rate run: conversions/s (0: skip)")
	rateFor := fs.Duration("rate-d", 10*time.Second, "fixed-rate run duration")
	contexts := fs.Int("contexts", 0, "contexts to seed (default -n)")
	mix := fs.String("mix", loadgen.DefaultMix, "channel weights")
	businesses := fs.Int("businesses", 8, "business ids per channel (each its own dataset)")
	latency := fs.Duration("graph-latency", 0, "fake Graph answer time: log-normal around it, p99 about 2.5 times it (0: at once)")
	hang := fs.Int("hang", 0, "businesses whose requests hang past HTTP_TIMEOUT (fake Graph); their conversions are not waited for")
	noRaw := fs.Bool("no-raw", false, "skip the raw fetch+ack rounds")
	senderEnv := fs.String("sender-env", "", "more sender settings, K=V,K=V (e.g. LINGER=0,MAX_INFLIGHT=64)")
	graph := fs.String("graph", "fake", `Graph API: "fake" (internal/fakegraph, checks Meta's rules) or "sink" (answers only)`)
	timeout := fs.Duration("timeout", 2*time.Minute, "bound on waiting for one round")
	rssEvery := fs.Duration("rss-every", 0, "print the sender's VmRSS and VmHWM this often while the rounds run (0: only at the end)")
	procsFlag := fs.String("procs", "", "more processes to report CPU time per conversion for, name=pid,... (e.g. nats=123,redis=456)")
	if err := fs.Parse(settings.RenameFlags(args, map[string]string{"nats": "nats-url"})); err != nil {
		return err
	}
	if *n < 1 || *rounds < 1 {
		return errors.New("-n and -rounds must be at least 1 (conversions per round, rounds)")
	}
	m, err := loadgen.ParseMix(*mix)
	if err != nil {
		return err
	}
	procs, err := loadgen.ParseProcs(*procsFlag)
	if err != nil {
		return err
	}
	if *contexts <= 0 {
		*contexts = *n
	}
	gen := &loadgen.ConvGen{Bodies: loadgen.NewBodyGen(*businesses), Mix: m, Contexts: *contexts}

	rdb, err := attribution.NewClient(*redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	start := time.Now()
	if err := gen.Seed(ctx, attribution.NewStore(rdb, attribution.DefaultTTL)); err != nil {
		return fmt.Errorf("seed contexts: %w", err)
	}
	fmt.Fprintf(stdout, "seeded %d contexts in %s\n", *contexts, time.Since(start).Round(time.Millisecond))

	nc, err := nats.Connect(*natsURL, nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	dir, err := os.MkdirTemp("", "loadgen-sender-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	datasets := map[string]string{}
	for i, b := range gen.Businesses() {
		datasets[b] = strconv.Itoa(900000000000 + i)
	}
	g := startGraph(*graph, datasets)
	defer g.close()
	hung := map[string]bool{}
	if *hang > 0 || *latency > 0 {
		if g.fake == nil {
			return errors.New("-hang and -graph-latency need -graph fake")
		}
		g.fake.Latency(*latency)
		g.fake.LatencyJitter(logNormal)
		for _, b := range gen.Businesses()[:min(*hang, len(datasets))] {
			hung[b] = true
			g.fake.HangDataset(datasets[b])
		}
	}
	dsFile, err := writeDatasets(dir, datasets)
	if err != nil {
		return err
	}
	if *senderLog == "" {
		*senderLog = filepath.Join(dir, "sender.log")
	}
	env := []string{
		"NATS_URL=" + *natsURL, "REDIS_URL=" + *redisURL, "GRAPH_API_BASE=" + g.url,
		"CAPI_ACCESS_TOKEN=" + fakegraph.DefaultToken, "CAPI_DATASETS_FILE=" + dsFile,
		"BATCH_SIZE=" + strconv.Itoa(*batch), "LOG_LEVEL=warn",
	}
	if *senderEnv != "" {
		env = append(env, strings.Split(*senderEnv, ",")...)
	}
	proc, err := startSender(*bin, *senderLog, env)
	if err != nil {
		return err
	}
	defer stopSender(proc, *senderLog, stdout)

	fmt.Fprintf(stdout, "loadgen sender: n=%d rounds=%d batch=%d rate=%.0f rate-d=%s graph=%s contexts=%d businesses=%d graph-latency=%s hang=%d sender-env=%q\n",
		*n, *rounds, *batch, *rate, *rateFor, *graph, *contexts, len(datasets), *latency, len(hung), *senderEnv)
	b := &loadgen.SenderBench{
		JS: js, Gen: gen, RunID: strconv.FormatInt(time.Now().UnixNano(), 36), N: *n, Rounds: *rounds, Batch: *batch,
		Rate: *rate, RateFor: *rateFor, Attach: g.attach, Timeout: *timeout, Out: stdout,
		Hold:  true,
		Procs: append([]loadgen.Proc{{Name: "sender", PID: proc.Process.Pid}}, procs...),
		Redis: rdb, NoRaw: *noRaw,
	}
	if len(hung) > 0 {
		b.Hung = func(i int) bool { return hung[gen.BusinessOf(i)] }
	}
	if g.fake != nil {
		b.GraphStats = g.stats
	}
	stopRSS := sampleRSS(stdout, proc.Process.Pid, *rssEvery)
	err = b.Run(ctx)
	stopRSS()
	if len(hung) > 0 {
		g.fake.ClearFaults() // let the hung requests end, so the sender can stop
	}
	if err == nil {
		err = reportRSS(stdout, proc.Process.Pid)
	}
	return err
}

// graphUnderTest is the Graph API the sender posts to.
type graphUnderTest struct {
	url    string
	attach func(*loadgen.Tracker)
	close  func()
	fake   *fakegraph.Server // nil for the sink

	requests int // at the last stats
}

// startGraph starts the Graph API the sender posts to.
func startGraph(kind string, datasets map[string]string) *graphUnderTest {
	if kind == "sink" {
		s := loadgen.NewSink()
		return &graphUnderTest{url: s.URL(), attach: s.Attach, close: s.Close}
	}
	g := fakegraph.NewServer(fakegraph.Options{Datasets: datasets, StrictDatasets: true})
	gt := &graphUnderTest{url: g.URL(), close: g.Close, fake: g}
	gt.attach = func(t *loadgen.Tracker) {
		if t == nil {
			g.OnAccept(nil)
			return
		}
		g.OnAccept(func(evs []fakegraph.Event) {
			now := time.Now()
			ids := make([]string, len(evs))
			for i := range evs {
				ids[i] = evs[i].EventID
			}
			t.Accept(now, ids...)
		})
	}
	return gt
}

// stats describes the fake's requests since the last call and forgets
// them (a long run would hold every accepted event).
func (g *graphUnderTest) stats() string {
	reqs, evs, peak := g.fake.Requests(), len(g.fake.Events()), g.fake.PeakInFlight()
	g.fake.Reset()
	per := 0.0
	if reqs > 0 {
		per = float64(evs) / float64(reqs)
	}
	return fmt.Sprintf("requests %d  events/request %.1f  peak in flight %d", reqs, per, peak)
}

// logNormal draws a Graph answer time around d: log-normal with median d
// and σ = ln 2.5 / 2.326, so that the 99th percentile is 2.5·d.
func logNormal(d time.Duration) time.Duration {
	const sigma = 0.3939 // ln(2.5) / z(0.99)
	return time.Duration(float64(d) * math.Exp(sigma*rand.NormFloat64()))
}

// sampleRSS prints the sender's memory every d until the returned stop is
// called (nothing when d is 0), so that a drain's RSS can be followed, not
// only its peak.
func sampleRSS(out io.Writer, pid int, d time.Duration) (stop func()) {
	if d <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			hwm, rss := readRSS(pid)
			fmt.Fprintf(out, "rss t=%s now=%s peak=%s\n", time.Since(start).Round(time.Second), rss, hwm)
		}
	}()
	return func() { close(done); <-finished }
}

// readRSS reads VmHWM and VmRSS of pid from /proc ("" when unavailable).
func readRSS(pid int) (hwm, rss string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwm = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = strings.TrimSpace(v)
		}
	}
	return hwm, rss
}

// reportRSS prints the sender's peak resident memory (VmHWM) and current
// (VmRSS) from /proc.
func reportRSS(out io.Writer, pid int) error {
	hwm, rss := readRSS(pid)
	if hwm == "" {
		return nil // not Linux, or gone: nothing to report
	}
	fmt.Fprintf(out, "RESULT sender_rss peak=%s now=%s\n", hwm, rss)
	return nil
}

// writeDatasets writes CAPI_DATASETS_FILE for the harness's businesses.
func writeDatasets(dir string, datasets map[string]string) (string, error) {
	type entry struct {
		DatasetID string `json:"dataset_id"`
	}
	m := map[string]entry{}
	for b, d := range datasets {
		m[b] = entry{DatasetID: d}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "datasets.json")
	return path, os.WriteFile(path, raw, 0o600)
}

// startSender starts the sender binary with env added to ours.
func startSender(bin, logPath string, env []string) (*exec.Cmd, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("sender binary: %w (build it: go build -o bin/sender ./cmd/sender)", err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-metrics-addr=")
	cmd.Env = append(os.Environ(), env...)
	// If the harness dies without stopping it, the sender goes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start sender: %w", err)
	}
	go func() { cmd.Wait(); logf.Close() }() //nolint:errcheck // exit status is read from the log
	return cmd, nil
}

// stopSender terminates the sender, then
// prints the tail of its log if it logged errors.
func stopSender(cmd *exec.Cmd, logPath string, out io.Writer) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if err := cmd.Process.Signal(syscall.Signal(0)); errors.Is(err, os.ErrProcessDone) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	if b, err := os.ReadFile(logPath); err == nil && len(b) > 0 {
		fmt.Fprintf(out, "sender log (%s), last 2000 bytes:\n%s\n", logPath, b[max(0, len(b)-2000):])
	}
}
