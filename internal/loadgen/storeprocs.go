package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/localcreds"
)

// The processes StoreBench runs: the all-in-one and redis-server.

// aio is a running all-in-one.
type aio struct {
	cmd        *exec.Cmd
	webhookURL string
	storeAddr  string // embedded store's RESP address
	storePass  string // its password, from DATA_DIR/credentials.json
}

func (b *StoreBench) start(ctx context.Context, dataDir, redisURL string) (*aio, error) {
	cmd := exec.CommandContext(ctx, b.Bin)
	cmd.Env = append(os.Environ(), "DATA_DIR="+dataDir, "INGEST_ADDR=127.0.0.1:0", "NATS_ADDR=127.0.0.1:0",
		"META_APP_SECRET="+storeBenchSecret, "META_VERIFY_TOKEN=loadgen", "ADMIN_TOKEN=loadgen", "REDIS_URL="+redisURL)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start all-in-one: %w", err)
	}
	a := &aio{cmd: cmd}
	url, addr := make(chan string, 1), make(chan string, 1)
	go scanLines(stdout, func(line string) {
		if _, rest, ok := strings.Cut(line, "POST http://"); ok {
			u, _, _ := strings.Cut(rest, " ")
			select {
			case url <- "http://" + u:
			default:
			}
		}
	})
	go scanLines(stderr, func(line string) {
		if strings.Contains(line, `"embedded store ready"`) {
			var l struct{ Addr string }
			json.Unmarshal([]byte(line), &l) //nolint:errcheck // a log line that is not JSON has no address
			addr <- l.Addr
		}
	})
	if redisURL == "" {
		select {
		case a.storeAddr = <-addr:
		case <-time.After(5 * time.Minute):
			a.kill()
			return nil, errors.New("all-in-one: no \"embedded store ready\" in 5m")
		}
		creds, err := localcreds.Load(dataDir)
		if err != nil {
			a.kill()
			return nil, err
		}
		a.storePass = creds.StorePassword
	}
	select {
	case a.webhookURL = <-url:
	case <-time.After(5 * time.Minute):
		a.kill()
		return nil, errors.New("all-in-one: no banner in 5m")
	}
	return a, nil
}

func scanLines(r io.Reader, f func(string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f(sc.Text())
	}
}

func (a *aio) kill() {
	a.cmd.Process.Signal(syscall.SIGKILL) //nolint:errcheck // it may be gone already
	a.cmd.Wait()                          //nolint:errcheck // killed
}

func (a *aio) stop() {
	a.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may be gone already
	a.cmd.Wait()                          //nolint:errcheck // its exit status says nothing we need
}

// waitReady polls /readyz until 200.
func (a *aio) waitReady(ctx context.Context) error {
	ready := strings.Replace(a.webhookURL, "/webhook", "/readyz", 1)
	for ctx.Err() == nil {
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ctx.Err()
}

// rss is a process's resident set in bytes (0 when unknown).
func rss(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

type redisProc struct {
	cmd  *exec.Cmd
	addr string
}

// startRedisServer runs redis-server with an append-only file fsynced every
// second (its usual durable setting), in dir.
func startRedisServer(bin, dir string) (*redisProc, error) {
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", "everysec", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &redisProc{cmd: cmd, addr: addr}
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for i := 0; c.Ping(context.Background()).Err() != nil; i++ {
		if i > 250 {
			r.stop()
			return nil, errors.New("redis-server did not answer in 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r, nil
}

func (r *redisProc) stop() {
	r.cmd.Process.Kill() //nolint:errcheck // it may be gone already
	r.cmd.Wait()         //nolint:errcheck // killed
}
