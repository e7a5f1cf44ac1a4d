package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// wrkScript cycles through pre-signed bodies. Each line of the bodies file is
// "<X-Hub-Signature-256 value> <body>" (compact JSON has no newline); thread
// k of n keeps lines k, k+n, ... and formats every request once, in init, so
// that request() is a table lookup.
const wrkScript = `-- written by loadgen: cycles through pre-signed webhook bodies
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  reqs = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == tid then
      local sig, body = line:match("^(%S+) (.*)$")
      reqs[#reqs + 1] = wrk.format("POST", nil,
        {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = sig}, body)
    end
    i = i + 1
  end
  idx = 0
end

function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end
`

// WriteWrkFiles writes the pool as a bodies file and the Lua script into dir
// and returns their paths.
func WriteWrkFiles(dir string, p *Pool) (script, bodies string, err error) {
	script = filepath.Join(dir, "webhooks.lua")
	bodies = filepath.Join(dir, "bodies.txt")
	if err := os.WriteFile(script, []byte(wrkScript), 0o644); err != nil {
		return "", "", fmt.Errorf("wrk: %w", err)
	}
	f, err := os.Create(bodies)
	if err != nil {
		return "", "", fmt.Errorf("wrk: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range p.Len() {
		s := p.Item(i)
		w.WriteString(s.Signature)
		w.WriteByte(' ')
		w.Write(s.Body)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", "", fmt.Errorf("wrk: %w", err)
	}
	return script, bodies, f.Close()
}

// WrkResult is what wrk printed.
type WrkResult struct {
	Requests    uint64
	Non2xx      uint64
	SocketErrs  uint64
	Seconds     float64 // the "in 10.00s" of the summary
	P50, P90    time.Duration
	P99, Max    time.Duration
	RequestsSec float64
}

// Throughput returns 2xx responses per second.
func (w *WrkResult) Throughput() float64 {
	if w.Seconds <= 0 {
		return 0
	}
	return float64(w.Requests-min(w.Non2xx, w.Requests)) / w.Seconds
}

// RunWrk runs wrk (a path or name on PATH) against url and parses its
// report.
func RunWrk(ctx context.Context, wrk, url, script, bodies string, threads, conns int, d time.Duration) (*WrkResult, error) {
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())),
		"--latency", "-s", script, url, "--", bodies, strconv.Itoa(threads)}
	out, err := exec.CommandContext(ctx, wrk, args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return ParseWrk(string(out))
}

// ParseWrk reads the report wrk --latency prints.
func ParseWrk(out string) (*WrkResult, error) {
	var r WrkResult
	var sawReqs bool
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && f[0] == "Latency" && !strings.HasSuffix(f[1], "%"):
			r.Max, _ = parseWrkDuration(f[3])
		case len(f) == 2 && strings.HasSuffix(f[0], "%"):
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return nil, fmt.Errorf("wrk: %w", err)
			}
			switch f[0] {
			case "50%", "50.000%":
				r.P50 = d
			case "90%", "90.000%":
				r.P90 = d
			case "99%", "99.000%":
				r.P99 = d
			}
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			r.Requests, _ = strconv.ParseUint(f[0], 10, 64)
			r.Seconds, _ = strconv.ParseFloat(strings.TrimSuffix(strings.TrimSuffix(f[3], ","), "s"), 64)
			sawReqs = true
		case strings.Contains(line, "Non-2xx or 3xx responses:"):
			r.Non2xx, _ = strconv.ParseUint(f[len(f)-1], 10, 64)
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			for i := 2; i+1 < len(f); i += 2 {
				n, _ := strconv.ParseUint(strings.TrimSuffix(f[i+1], ","), 10, 64)
				r.SocketErrs += n
			}
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.RequestsSec, _ = strconv.ParseFloat(f[1], 64)
		}
	}
	if !sawReqs {
		return nil, fmt.Errorf("wrk: no summary in output: %q", out)
	}
	return &r, nil
}

// parseWrkDuration reads wrk's "812.00us", "1.23ms", "2.00s" or "1.50m".
func parseWrkDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("duration %q", s)
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("duration %q", s)
}

// runWrk repeats the closed-loop comparison with wrk.
func (b *IngestBench) runWrk(ctx context.Context) error {
	dir, err := os.MkdirTemp(b.TempDir, "loadgen-wrk-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d := b.Warmup + b.Duration
	bareRPS, ingestRPS, ratios, err := b.alternate(func(name string, round int, e Endpoint) (float64, error) {
		script, bodies, err := WriteWrkFiles(dir, b.poolFor(e))
		if err != nil {
			return 0, err
		}
		procs := b.Procs
		before, wrkBefore, cmds, start, mach := SampleCPU(procs), childrenCPU(), b.commandStats(ctx), time.Now(), SampleMachine()
		w, err := RunWrk(ctx, b.Wrk, "http://"+e.Host+e.Path, script, bodies, b.WrkThreads, b.Conns, d)
		if err != nil {
			return 0, err
		}
		wall, after := time.Since(start), SampleCPU(procs)
		cpu := PerRequest(before, after, w.Requests)
		wrkCPU := childrenCPU() - wrkBefore
		busy := Busy(append(before, 0), append(after, wrkCPU), wall)
		others := Others(mach, SampleMachine(), busy)
		fmt.Fprintf(b.Out, "%-22s wrk  conns %d  rps %9.0f  p50 %s  p90 %s  p99 %s  max %s  non2xx %d  sockerr %d\n",
			fmt.Sprintf("%s round %d", name, round+1), b.Conns, w.Throughput(), ms(w.P50), ms(w.P90), ms(w.P99),
			ms(w.Max), w.Non2xx, w.SocketErrs)
		fmt.Fprintf(b.Out, "  cpu/request: wrk %.1fµs", us(wrkCPU/time.Duration(max(w.Requests, 1))))
		for i, p := range procs {
			if cpu[i] >= 0 {
				fmt.Fprintf(b.Out, " %s %.1fµs", p.Name, us(cpu[i]))
			}
		}
		fmt.Fprintf(b.Out, "  (busy %.0f%% of %d CPUs; others %.0f%%)\n", 100*busy, runtime.NumCPU(), 100*others)
		b.printCommands(ctx, cmds, int(w.Requests))
		return w.Throughput(), nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(b.Out, "RESULT ingest generator=wrk conns=%d bare_rps=%.0f ingest_rps=%.0f ratio=%.3f ratios=%s target>=0.55\n",
		b.Conns, Median(bareRPS), Median(ingestRPS), Median(ratios), formatFloats(ratios))
	return nil
}
