// Package test holds the black-box tests: they build the real binaries, start
// them as separate processes against a real redis-server, an in-process NATS
// JetStream server and a fake Graph API, and talk to them only through their
// outside contract (HTTP, NATS subjects, files).
package test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/redistest"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

var (
	binDir   string
	buildMu  sync.Mutex
	builtErr = map[string]error{}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ctmpipe-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary builds ./cmd/<name> once per test run (with -race when the tests run
// with it, so the binaries are checked too) and returns its path.
func binary(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	path := filepath.Join(binDir, name)
	err, done := builtErr[name]
	if !done {
		args := []string{"build", "-o", path}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "../cmd/"+name)
		out, berr := exec.Command("go", args...).CombinedOutput()
		if berr != nil {
			err = fmt.Errorf("go build %s: %v\n%s", name, berr, out)
		}
		builtErr[name] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// proc is a running binary with its combined output captured.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// start runs the named binary with env (KEY=VALUE) on top of a minimal
// environment, in dir (a temp dir when empty), and kills it at cleanup.
func start(t testing.TB, name, dir string, env []string, args ...string) *proc {
	t.Helper()
	path := binary(t, name)
	if dir == "" {
		dir = t.TempDir()
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	redistest.DieWithParent(cmd) // a timed-out test must not leave the binaries running
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	out := &syncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{t: t, name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	return p
}

// Kill sends SIGKILL, as a crash would, and waits for the process to end.
func (p *proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to d for a graceful exit; it returns the
// exit error (nil for status 0).
func (p *proc) Stop(d time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("%s exited with status %d", p.name, code)
		}
		return nil
	case <-time.After(d):
		p.Kill()
		return fmt.Errorf("%s did not exit within %v of SIGTERM", p.name, d)
	}
}

// Output returns everything the process printed so far.
func (p *proc) Output() string { return p.out.String() }

// waitOutput polls the output until re matches and returns the first
// submatch (or the whole match when re has no group).
func (p *proc) waitOutput(re *regexp.Regexp, d time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m[len(m)-1]
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited before printing %q:\n%s", p.name, re, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not print %q within %v:\n%s", p.name, re, d, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond until it is true or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.CheckFor(t, d, func() error { return poll.Until(what, cond()) })
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t testing.TB, url string, d time.Duration) {
	t.Helper()
	waitFor(t, d, url+" to answer 200", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// freeAddr returns a 127.0.0.1:port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// lines returns the non-empty lines of a file (nil when it does not exist).
func lines(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			out = append(out, append([]byte(nil), l...))
		}
	}
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
