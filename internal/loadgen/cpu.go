package loadgen

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPU time per request is the number least disturbed by a noisy neighbour:
// throughput drops when another tenant takes a core, but the microseconds
// ingest spends on one webhook stay put. The harness samples the CPU time of
// the processes it is told about (ingest, bare, redis-server, itself) around
// every run.

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports (the kernel fixes it for the ABI).
const clockTick = 10 * time.Millisecond

// Proc is a process whose CPU time a run accounts for.
type Proc struct {
	Name string
	PID  int
}

// ParseProcs reads "ingest=123,redis=456".
func ParseProcs(s string) ([]Proc, error) {
	var out []Proc
	if s == "" {
		return nil, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		name, pid, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(pid)
		if !ok || name == "" || err != nil || n <= 0 {
			return nil, fmt.Errorf("procs: %q is not name=pid", part)
		}
		out = append(out, Proc{Name: name, PID: n})
	}
	return out, nil
}

// ProcCPU returns the user+system CPU time process pid has used.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStat(string(b))
}

// parseStat reads utime and stime (fields 14 and 15) from a /proc/<pid>/stat
// line. The command name (field 2) may hold spaces and parentheses, so
// fields are counted from its closing parenthesis.
func parseStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields", len(f)+2)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat: bad utime/stime")
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// CPUSample is the CPU time of each Proc at one moment.
type CPUSample []time.Duration

// SampleCPU reads every proc's CPU time; a process that cannot be read
// counts as -1.
func SampleCPU(procs []Proc) CPUSample {
	s := make(CPUSample, len(procs))
	for i, p := range procs {
		d, err := ProcCPU(p.PID)
		if err != nil {
			d = -1
		}
		s[i] = d
	}
	return s
}

// PerRequest returns each proc's CPU time between before and after divided
// by n requests, or -1 where unknown.
func PerRequest(before, after CPUSample, n uint64) []time.Duration {
	out := make([]time.Duration, len(before))
	for i := range before {
		if before[i] < 0 || after[i] < 0 || n == 0 {
			out[i] = -1
			continue
		}
		out[i] = (after[i] - before[i]) / time.Duration(n)
	}
	return out
}

// childrenCPU returns the CPU time of this process's waited-for children
// (wrk, once RunWrk has returned).
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Busy returns the share of the machine's CPUs the watched processes used
// between before and after, wall apart: near 1 means the run was bound by
// CPU, well below it means by waiting (round trips, batching delays).
func Busy(before, after CPUSample, wall time.Duration) float64 {
	var used time.Duration
	for i := range before {
		if before[i] >= 0 && after[i] >= 0 {
			used += after[i] - before[i]
		}
	}
	if wall <= 0 {
		return 0
	}
	return float64(used) / float64(wall) / float64(runtime.NumCPU())
}

// MachineSample is the machine's CPU time from /proc/stat, in ticks.
type MachineSample struct{ busy, total uint64 }

// SampleMachine reads the first line of /proc/stat; zero when unreadable.
func SampleMachine() MachineSample {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineSample{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseProcStat(line)
}

// parseProcStat reads "cpu  user nice system idle iowait irq softirq steal
// ...": idle and iowait are not busy; guest time is already in user.
func parseProcStat(line string) MachineSample {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return MachineSample{}
	}
	var m MachineSample
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return MachineSample{}
		}
		m.total += n
		if i != 3 && i != 4 { // idle, iowait
			m.busy += n
		}
	}
	return m
}

// Others returns the share of the machine's CPUs used by processes other
// than the watched ones between two samples, given the watched processes'
// busy share: a run with others well above zero shared the machine with
// someone else's work, and its throughput is low by about that much.
func Others(before, after MachineSample, watched float64) float64 {
	if after.total <= before.total {
		return 0
	}
	all := float64(after.busy-before.busy) / float64(after.total-before.total)
	return max(all-watched, 0)
}
