package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// The fault suite (test/fault_*_test.go) runs the whole pipeline as separate
// processes (ingest and sender binaries, redis-server, in-process JetStream,
// the fake Graph API), injects one kind of fault per scenario, and ends each
// with account: every published conversion must be accepted by the fake
// Graph exactly once, or be a dead letter with the expected reason.

var faultSoakFlag = flag.Bool("soak", false, "run the long fault soak (also CTM_SOAK=1)")

// faultSoak reports whether the long soak variant was asked for.
func faultSoak() bool { return *faultSoakFlag || os.Getenv("CTM_SOAK") == "1" }

// Secrets of the ingest under fault.
const (
	faultAppSecret   = "fault-app-secret-2b7e"
	faultVerifyToken = "fault-verify-token-91c0"
	faultAdminToken  = "fault-admin-token-d35a"
)

// faultSenderReady is the sender's log line once it consumes.
var faultSenderReady = regexp.MustCompile(`"msg":"sender started"`)

// faultOptions shape one rig.
type faultOptions struct {
	RedisArgs []string // extra redis-server arguments (persistence)
	// RedisURL, when set, is the Redis the services use (Sentinel, a
	// cluster with replicas) instead of a redis-server of the rig's own;
	// the rig's redis is then nil.
	RedisURL  string
	SenderEnv []string // added to (and overriding) the sender defaults
	IngestEnv []string // added to (and overriding) the ingest defaults
	Datasets  string   // CAPI_DATASETS_FILE contents; "" for none
	Tokens    []string // valid Graph tokens; default fakegraph.DefaultToken
	// AppSecrets registers at the fake Graph the app secret of a token
	// (token → secret): its calls then need a proof keyed with it.
	AppSecrets map[string]string
}

// faultRig is the pipeline under fault.
type faultRig struct {
	t      *testing.T
	redis  *redistest.Server
	nats   *natstest.Server
	graph  *fakegraph.Server
	js     jetstream.JetStream
	ingest string // base URL of the webhook listener
	// ingests, when set, are several ingests' webhook listeners: posts go
	// to them in turn (scale-out), and ingest is unused.
	ingests []string
	rr      atomic.Uint64
	admin   string // base URL of ingest's admin listener
	ingEnv  []string
	ingP    *proc
	httpc   *http.Client
	env     []string   // the sender's
	run     string     // random tag: ids differ between runs
	rnd     *faultRand // the scenario's random choices, from the logged seed
	trnd    *faultRand // the traffic's (ids, businesses), from the same seed
	seq     atomic.Int64

	mu     sync.Mutex
	sender *proc
	wants  faultIndex // every conversion ever published, and its expected fate
	dead   []faultDead
	next   uint64 // next DLQ sequence to read
}

// newFaultRig starts redis-server, JetStream, the fake Graph API, ingest and
// one sender.
func newFaultRig(t *testing.T, o faultOptions) *faultRig {
	t.Helper()
	binary(t, "ingest") // build first (and skip under -short)
	binary(t, "sender")
	tag := make([]byte, 3)
	_, _ = rand.Read(tag)
	r := &faultRig{
		t: t, nats: natstest.RunJetStream(t),
		graph: fakegraph.New(t, fakegraph.Options{Tokens: o.Tokens, AppSecrets: o.AppSecrets}),
		httpc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}},
		run:   hex.EncodeToString(tag), wants: newFaultIndex(), rnd: newFaultRand(t), trnd: newTrafficRand(t),
	}
	t.Cleanup(r.httpc.CloseIdleConnections)
	redisURL := o.RedisURL
	if redisURL == "" {
		r.redis = redistest.Start(t, o.RedisArgs...)
		redisURL = r.redis.URL()
	}
	js, err := jetstream.New(r.nats.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	r.js = js

	addr, adminAddr := freeAddr(t), freeAddr(t)
	r.ingest, r.admin = "http://"+addr, "http://"+adminAddr
	r.ingEnv = append(faultIngestEnv(addr, adminAddr, redisURL, r.nats.ClientURL()), o.IngestEnv...)
	r.startIngest()

	r.env = faultSenderEnv(r.nats.ClientURL(), redisURL, r.graph.URL())
	if o.Datasets != "" {
		path := filepath.Join(t.TempDir(), "datasets.json")
		if err := os.WriteFile(path, []byte(o.Datasets), 0o600); err != nil {
			t.Fatal(err)
		}
		r.env = append(r.env, "CAPI_DATASETS_FILE="+path)
	}
	r.env = append(r.env, o.SenderEnv...)
	r.startSender()
	return r
}

// faultIngestEnv is the environment of an ingest under fault.
func faultIngestEnv(addr, adminAddr, redisURL, natsURL string) []string {
	return []string{
		"INGEST_ADDR=" + addr, "ADMIN_ADDR=" + adminAddr, "REDIS_URL=" + redisURL,
		"META_APP_SECRET=" + faultAppSecret, "META_VERIFY_TOKEN=" + faultVerifyToken,
		"ADMIN_TOKEN=" + faultAdminToken, "STORE_TIMEOUT=1s", "LOG_LEVEL=info",
		// Connected only when a setting needs it (intake, forwarding).
		"NATS_URL=" + natsURL,
	}
}

// faultSenderEnv is the environment of a sender under fault.
func faultSenderEnv(natsURL, redisURL, graphURL string) []string {
	return []string{
		"NATS_URL=" + natsURL, "REDIS_URL=" + redisURL,
		"CAPI_ACCESS_TOKEN=" + fakegraph.DefaultToken, "GRAPH_API_BASE=" + graphURL,
		"METRICS_ADDR=127.0.0.1:0", "LOG_LEVEL=info", "WORKERS=2", "BATCH_SIZE=100",
		// Generous against a slow (race-instrumented, shared) machine: a
		// timed-out post is in doubt, which most scenarios do not expect.
		"ACK_WAIT=3s", "SEND_LEASE=6s", "HTTP_TIMEOUT=5s", "SHUTDOWN_TIMEOUT=5s",
		"RETRY_MIN=100ms", "RETRY_MAX=1s", "PAUSE_INTERVAL=1s",
		"CONTEXT_WAIT=60s", "CONTEXT_RETRY_MIN=200ms", "CONTEXT_RETRY_MAX=1s",
		// The scenarios hold every channel to its webhook, Instagram too
		// (not the default; docs/contract.md#referral-requirement).
		"REQUIRE_REFERRAL=messenger,instagram",
	}
}

// startSender starts a sender (the previous one must be gone) and waits
// until it consumes.
func (r *faultRig) startSender() *proc {
	r.t.Helper()
	p := start(r.t, "sender", "", r.env)
	p.waitOutput(faultSenderReady, 60*time.Second)
	r.mu.Lock()
	r.sender = p
	r.mu.Unlock()
	return p
}

// startIngest starts ingest on the rig's address and waits until it is
// ready (the previous one must be gone).
func (r *faultRig) startIngest() *proc {
	r.t.Helper()
	p := start(r.t, "ingest", "", r.ingEnv)
	waitHTTP(r.t, r.ingest+"/readyz", 30*time.Second)
	r.ingP = p
	return p
}

// currentSender is the sender started last.
func (r *faultRig) currentSender() *proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sender
}

// post signs body and posts it to /webhook; 0 means no answer.
func (r *faultRig) post(body []byte) int {
	return r.postWith(body, webhook.Sign(body, []byte(faultAppSecret)))
}

// postWith posts body with the given X-Hub-Signature-256 ("" for none).
func (r *faultRig) postWith(body []byte, signature string) int {
	base := r.ingest
	if len(r.ingests) > 0 {
		base = r.ingests[r.rr.Add(1)%uint64(len(r.ingests))]
	}
	req, err := http.NewRequest(http.MethodPost, base+"/webhook", bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set(webhook.SignatureHeader, signature)
	}
	resp, err := r.httpc.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// get answers GET path on ingest (0: no answer): the admin API's paths
// (/v1/...) on the admin listener, the others on the webhook listener.
func (r *faultRig) get(path string) int {
	base := r.ingest
	if strings.HasPrefix(path, "/v1/") || path == "/metrics" {
		base = r.admin
	}
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+faultAdminToken)
	resp, err := r.httpc.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// redeliver posts body until ingest answers 200, as Meta retries a webhook
// (faster than Meta does), for at most d.
func (r *faultRig) redeliver(body []byte, d time.Duration) error {
	deadline := time.Now().Add(d)
	wait := 50 * time.Millisecond
	for {
		code := r.post(body)
		if code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("webhook still not stored after " + d.String() + ": last status " + http.StatusText(code))
		}
		time.Sleep(wait) // Meta's retry interval, not synchronisation
		wait = min(2*wait, time.Second)
	}
}

// publish stores one message in CONVERSIONS with Nats-Msg-Id msgID, retrying
// (same id: JetStream drops the copies) while NATS is away, for up to 60s.
func (r *faultRig) publish(subject, msgID string, data []byte) error {
	m := nats.NewMsg(subject)
	m.Data = data
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := r.js.PublishMsg(ctx, m)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond) // a publisher's retry pacing
	}
}

// faultStep is a fault injected once traffic has published At conversions.
type faultStep struct {
	At int64
	Do func()
}

// during runs s and performs steps in order as it passes their marks, on
// the test's goroutine (steps may fail t); it returns when s is done.
func (r *faultRig) during(t *testing.T, s *faultStream, steps ...faultStep) {
	t.Helper()
	done := make(chan error, 1)
	var over atomic.Bool
	go func() {
		err := s.run(r)
		over.Store(true)
		done <- err
	}()
	for _, st := range steps {
		waitFor(t, 2*time.Minute, "traffic to flow", func() bool { return s.published.Load() >= st.At || over.Load() })
		st.Do()
	}
	if err := <-done; err != nil {
		t.Fatalf("traffic: %v", err)
	}
}
