package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/ingest"
	"github.com/ctmpipe/ctmpipe/internal/localcreds"
	"github.com/ctmpipe/ctmpipe/internal/replay"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/services"
)

// allInOne is run() going in the background.
type allInOne struct {
	ingest, admin, nats string
	dataDir             string // its credentials are in there
	logs                *syncBuffer
	cancel              context.CancelFunc
	done                chan error
}

var (
	listeningRE = regexp.MustCompile(`"msg":"listening".*?"addr":"([^"]+)"`)
	adminRE     = regexp.MustCompile(`"msg":"admin listening".*?"addr":"([^"]+)"`)
	natsRE      = regexp.MustCompile(`"msg":"nats listening".*?"url":"([^"]+)"`)
)

func startAllInOne(t *testing.T, vars map[string]string) *allInOne {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	a := &allInOne{logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1), dataDir: vars["DATA_DIR"]}
	go func() { a.done <- run(ctx, nil, func(k string) string { return vars[k] }, io.Discard, a.logs) }()
	t.Cleanup(func() {
		cancel()
		<-a.done
		if t.Failed() {
			t.Logf("all-in-one logs:\n%s", a.logs)
		}
	})
	waitFor(t, 30*time.Second, "all-in-one to listen", func() bool {
		select {
		case err := <-a.done:
			a.done <- err // for the cleanup
			t.Fatalf("all-in-one exited: %v\n%s", err, a.logs)
		default:
		}
		s := a.logs.String()
		m1, m2, m3 := listeningRE.FindStringSubmatch(s), natsRE.FindStringSubmatch(s), adminRE.FindStringSubmatch(s)
		if m1 == nil || m2 == nil || m3 == nil {
			return false
		}
		a.ingest, a.nats, a.admin = "http://"+m1[1], m2[1], "http://"+m3[1]
		return true
	})
	return a
}

// stop ends run as SIGTERM would and returns its error.
func (a *allInOne) stop(t *testing.T) error {
	t.Helper()
	a.cancel()
	select {
	case err := <-a.done:
		a.done <- err // for the cleanup
		return err
	case <-time.After(time.Minute):
		t.Fatal("all-in-one did not stop within a minute")
		return nil
	}
}

func testVars(dir string) map[string]string {
	return map[string]string{
		"META_APP_SECRET": "aio-app-secret", "META_VERIFY_TOKEN": "aio-verify", "ADMIN_TOKEN": "aio-admin",
		"ONPREM_SECRET": "aio-onprem-secret-0001", "ONPREM_WABA_ID": "104222339999001",
		"INGEST_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0", "NATS_ADDR": "127.0.0.1:0", "DATA_DIR": dir,
	}
}

// TestWalkthrough is examples/README.md, in process: replay the example
// webhooks, publish the example conversions, find them in the dry-run file;
// then restart and check nothing was forgotten or is sent twice.
func TestWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	vars := testVars(dir)
	a := startAllInOne(t, vars)

	var sources []replay.Source
	for _, p := range []string{"webhooks", "onprem"} {
		s, err := replay.Path(filepath.Join("..", "..", "examples", p))
		must(t, err)
		sources = append(sources, s)
	}
	sum, err := replay.Run(t.Context(), replay.Config{Target: a.ingest + "/webhook",
		Secret: []byte(vars["META_APP_SECRET"]), OnPremSecret: vars["ONPREM_SECRET"]}, sources)
	if err != nil || sum.OK != 4 {
		t.Fatalf("replay: %v, %+v; want 4 ok", err, sum)
	}

	conversions := readLines(t, filepath.Join("..", "..", "examples", "conversions.jsonl"))
	js := connectJS(t, a)
	for _, c := range conversions {
		publish(t, js, c, "")
	}
	dryRun := filepath.Join(dir, dryRunFile)
	waitFor(t, time.Minute, "5 events in the dry-run file", func() bool { return len(sentIDs(t, dryRun)) == 5 })
	must(t, a.stop(t))

	a = startAllInOne(t, vars)
	checkContext(t, a.admin, vars["ADMIN_TOKEN"], "whatsapp/102290129340398/16315551234", "120212345678901234")
	checkContext(t, a.admin, vars["ADMIN_TOKEN"], "whatsapp/104222339999001/16315551234", "1234567890")
	// The same conversions again, past JetStream's duplicate window (new
	// Nats-Msg-Id): the sender's ledger, which survived, must hold them back.
	js = connectJS(t, a)
	for _, c := range conversions {
		publish(t, js, c, "-again")
	}
	publish(t, js, []byte(`{"event_id":"after-restart","event_name":"Purchase","channel":"messenger","business_id":"109876543210987","user_id":"6789012345678901","custom_data":{"currency":"EUR","value":1}}`), "")
	waitFor(t, time.Minute, "the new event and an idle consumer", func() bool {
		ids := sentIDs(t, dryRun)
		info, err := js.Consumer(t.Context(), sender.StreamConversions, sender.ConsumerName)
		if err != nil || ids["after-restart"] == 0 {
			return false
		}
		ci, err := info.Info(t.Context())
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	})
	for id, n := range sentIDs(t, dryRun) {
		if n != 1 {
			t.Errorf("event %s written %d times; want once", id, n)
		}
	}
	must(t, a.stop(t))
	for _, personal := range []string{"16315551234", "6789012345678901", "1234567890123456", "ARAkLkA8"} {
		if strings.Contains(a.logs.String(), personal) {
			t.Errorf("logs contain personal data %q", personal)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	vars := testVars(t.TempDir())
	tests := []struct {
		name  string
		args  []string
		unset string
		want  string
	}{
		{name: "onprem secret without waba id", unset: "ONPREM_WABA_ID", want: "ONPREM_WABA_ID"},
		{name: "bad nats addr", args: []string{"-nats-addr", "4222"}, want: "-nats-addr"},
		{name: "stray argument", args: []string{"now"}, want: "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == tt.unset {
					return ""
				}
				return vars[k]
			}
			err := run(t.Context(), tt.args, getenv, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) = %v; want an error naming %s", tt.args, err, tt.want)
			}
		})
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-help"}, func(string) string { return "" }, &out, io.Discard); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "capi-dryrun.jsonl") {
		t.Errorf("-help: %v\n%s", err, out.String())
	}
	// -help tells the rule as it is: all three secrets or none; it does not
	// promise that an unset ADMIN_TOKEN disables anything here.
	if !strings.Contains(out.String(), devRule) || strings.Contains(out.String(), "unset disables") {
		t.Errorf("-help does not state the development-mode rule truthfully:\n%s", out.String())
	}
}

// TestDevSecretsWhenUnset: with nothing configured all-in-one starts with
// the development secrets (and says so), but never overrides a set one.
func TestDevSecretsWhenUnset(t *testing.T) {
	cfg, err := parseConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatalf("parseConfig with nothing set: %v", err)
	}
	if !cfg.DevSecrets || len(cfg.Ingest.AppSecrets) != 1 || cfg.Ingest.AppSecrets[0] != devAppSecret ||
		cfg.Ingest.VerifyToken != devVerifyToken || cfg.Ingest.AdminToken != devAdminToken {
		t.Errorf("config with nothing set = dev %v, secrets %v; want the development defaults", cfg.DevSecrets, cfg.Ingest.AppSecrets)
	}
	if cfg.Ingest.Addr != "127.0.0.1:8080" || cfg.Ingest.AdminAddr != "127.0.0.1:8081" || cfg.NATSAddr != "127.0.0.1:4222" {
		t.Errorf("development listeners %s, %s, %s; want all on 127.0.0.1", cfg.Ingest.Addr, cfg.Ingest.AdminAddr, cfg.NATSAddr)
	}
	var out bytes.Buffer
	printBanner(&out, cfg, "127.0.0.1:8080", "127.0.0.1:8081", "nats://127.0.0.1:4222")
	if !strings.Contains(out.String(), "development mode") || !strings.Contains(out.String(), "bound to 127.0.0.1") {
		t.Errorf("development banner does not say so:\n%s", out.String())
	}
	vars := testVars(t.TempDir())
	cfg, err = parseConfig(nil, func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DevSecrets || cfg.Ingest.AppSecrets[0] != "aio-app-secret" || cfg.Ingest.AdminToken != "aio-admin" {
		t.Errorf("set secrets were overridden: dev %v", cfg.DevSecrets)
	}
	out.Reset()
	printBanner(&out, cfg, "[::]:8080", "127.0.0.1:8081", "nats://127.0.0.1:4222")
	if strings.Contains(out.String(), "aio-app-secret") || strings.Contains(out.String(), "aio-admin") || strings.Contains(out.String(), "development mode") {
		t.Errorf("banner prints a configured secret or claims development mode:\n%s", out.String())
	}
	for _, want := range []string{"http://127.0.0.1:8080/webhook", "http://127.0.0.1:8081/metrics", "http://127.0.0.1:8081/v1/contexts/", "go run ./cmd/replay", "go run ./cmd/publish -nats-url nats://127.0.0.1:4222"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, out.String())
		}
	}
}

// TestPartialSecretsRefused: with some of the three secrets set and others
// not, all-in-one does not start, and names every missing one (never a
// value); with only META_APP_SECRET set, no development token can open the
// handshake or the admin API.
func TestPartialSecretsRefused(t *testing.T) {
	tests := []struct {
		set     []string
		missing []string
	}{
		{[]string{"META_APP_SECRET"}, []string{"META_VERIFY_TOKEN", "ADMIN_TOKEN"}},
		{[]string{"ADMIN_TOKEN"}, []string{"META_APP_SECRET", "META_VERIFY_TOKEN"}},
		{[]string{"META_APP_SECRET", "META_VERIFY_TOKEN"}, []string{"ADMIN_TOKEN"}},
		{[]string{"META_VERIFY_TOKEN", "ADMIN_TOKEN"}, []string{"META_APP_SECRET"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.set, "+"), func(t *testing.T) {
			vars := map[string]string{"DATA_DIR": t.TempDir(), "INGEST_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0", "NATS_ADDR": "127.0.0.1:0"}
			for _, k := range tt.set {
				vars[k] = "value-of-" + k
			}
			var logs syncBuffer
			err := run(t.Context(), nil, func(k string) string { return vars[k] }, io.Discard, &logs)
			if err == nil {
				t.Fatalf("run with only %v set started", tt.set)
			}
			for _, k := range tt.missing {
				if !strings.Contains(err.Error(), k) {
					t.Errorf("refusal %q does not name %s", err, k)
				}
			}
			if strings.Contains(err.Error(), "value-of-") {
				t.Errorf("refusal %q contains a value", err)
			}
			if strings.Contains(logs.String(), "listening") {
				t.Errorf("a listener was opened before the refusal:\n%s", logs.String())
			}
		})
	}
}

// TestDevModeBindsLoopback: in development mode every listener is on
// 127.0.0.1, even when asked for all interfaces, and the log says so.
func TestDevModeBindsLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	vars := map[string]string{"DATA_DIR": t.TempDir(), "INGEST_ADDR": ":0", "ADMIN_ADDR": "0.0.0.0:0", "NATS_ADDR": "0.0.0.0:0"}
	a := startAllInOne(t, vars)
	for name, u := range map[string]string{"webhook": a.ingest, "admin": a.admin, "nats": a.nats} {
		host := strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "nats://")
		if !strings.HasPrefix(host, "127.0.0.1:") {
			t.Errorf("%s listener on %s; want 127.0.0.1", name, host)
		}
	}
	logs := a.logs.String()
	if !strings.Contains(logs, `"level":"warn"`) || !strings.Contains(logs, "development mode") ||
		!strings.Contains(logs, `"rebound_to_loopback":["NATS_ADDR","INGEST_ADDR","ADMIN_ADDR"]`) {
		t.Errorf("no development-mode warning naming the moved listeners:\n%s", logs)
	}
	// The development admin token opens the admin API, on 127.0.0.1 only.
	checkStatus(t, a.admin+"/v1/contexts/whatsapp/1/2", devAdminToken, http.StatusNotFound)
	must(t, a.stop(t))
}

func checkStatus(t *testing.T, url, token string, want int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Errorf("GET %s = %d; want %d", url, resp.StatusCode, want)
	}
}

// connectJS connects to the all-in-one's NATS as its tools do: with the
// credentials of its data directory.
func connectJS(t *testing.T, a *allInOne) jetstream.JetStream {
	t.Helper()
	url, opts, found, err := localcreds.NATS(a.nats, a.dataDir)
	must(t, err)
	if !found {
		t.Fatalf("no credentials in %s", a.dataDir)
	}
	nc, err := nats.Connect(url, opts...)
	must(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	must(t, err)
	waitFor(t, 30*time.Second, "stream CONVERSIONS", func() bool {
		_, err := js.Stream(t.Context(), sender.StreamConversions)
		return err == nil
	})
	return js
}

// publish sends a conversion as an order system does, with Nats-Msg-Id set
// to its event_id (plus suffix).
func publish(t *testing.T, js jetstream.JetStream, conv []byte, suffix string) {
	t.Helper()
	var c struct {
		EventID string `json:"event_id"`
		Channel string `json:"channel"`
	}
	must(t, json.Unmarshal(conv, &c))
	m := nats.NewMsg("conversions." + c.Channel)
	m.Data = conv
	m.Header.Set(jetstream.MsgIDHeader, c.EventID+suffix)
	_, err := js.PublishMsg(t.Context(), m)
	must(t, err)
}

// sentIDs counts the event ids in the dry-run file.
func sentIDs(t *testing.T, path string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, line := range readLines(t, path) {
		var req struct {
			Data []struct {
				EventID string `json:"event_id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(line, &req); err != nil {
			continue // a line being written
		}
		for _, e := range req.Data {
			ids[e.EventID]++
		}
	}
	return ids
}

func checkContext(t *testing.T, base, token, path, wantAd string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/contexts/"+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	var c struct {
		AdID string `json:"ad_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusOK || c.AdID != wantAd {
		t.Errorf("GET /v1/contexts/%s after restart: %d, ad_id %q, %v; want 200 and ad %s", path, resp.StatusCode, c.AdID, err, wantAd)
	}
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	must(t, err)
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
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

// TestDataDirLock: a second all-in-one on the same data directory refuses
// to start, says who holds it and what to do; the lock goes with its holder.
func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("first lock: %v", err)
	}
	err = run(t.Context(), nil, func(k string) string { return testVars(dir)[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "in use by process "+strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), "-data") {
		t.Fatalf("run on a locked data dir = %v; want an error naming the holder's pid and -data", err)
	}
	unlock()
	unlock2, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after the holder released it: %v", err)
	}
	unlock2()
}

// TestFlags: every ingest and sender setting has its flag here too (every
// setting has a flag of the same meaning); flags win over the
// environment, and each service keeps its own defaults for what is unset.
func TestFlags(t *testing.T) {
	env := map[string]string{"CONTEXT_WAIT": "5m", "BATCH_SIZE": "50"}
	getenv := func(k string) string { return env[k] }
	cfg, err := parseConfig([]string{"-data", "/tmp/x", "-addr", "127.0.0.1:0", "-context-wait", "1m",
		"-capture=off", "-context-ttl", "2d", "-dry-run-file", "/tmp/dry.jsonl"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/tmp/x" || cfg.Ingest.Addr != "127.0.0.1:0" || cfg.Sender.ContextWait != time.Minute ||
		cfg.Ingest.Capture || cfg.Ingest.ContextTTL != 48*time.Hour || cfg.Sender.DryRunFile != "/tmp/dry.jsonl" {
		t.Errorf("flags not applied: data %q addr %q context-wait %v capture %v ttl %v dry-run %q",
			cfg.DataDir, cfg.Ingest.Addr, cfg.Sender.ContextWait, cfg.Ingest.Capture, cfg.Ingest.ContextTTL, cfg.Sender.DryRunFile)
	}
	if cfg.Sender.BatchSize != 50 {
		t.Errorf("BATCH_SIZE from the environment = %d; want 50", cfg.Sender.BatchSize)
	}
	if cfg.Ingest.ShutdownTimeout != ingest.DefaultShutdownTimeout || cfg.Sender.ShutdownTimeout != sender.DefaultShutdownTimeout {
		t.Errorf("shutdown timeouts %v, %v; want each service's default", cfg.Ingest.ShutdownTimeout, cfg.Sender.ShutdownTimeout)
	}
	// Without flags: the environment, then all-in-one's own defaults.
	cfg, err = parseConfig(nil, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "data" || !cfg.Ingest.Capture || cfg.Sender.ContextWait != 5*time.Minute ||
		cfg.Sender.DryRunFile != filepath.Join("data", dryRunFile) {
		t.Errorf("defaults: data %q capture %v context-wait %v dry-run %q", cfg.DataDir, cfg.Ingest.Capture, cfg.Sender.ContextWait, cfg.Sender.DryRunFile)
	}
	// -data moves the dry-run file with it.
	if cfg, _ = parseConfig([]string{"-data", "/tmp/y"}, getenv); cfg.Sender.DryRunFile != filepath.Join("/tmp/y", dryRunFile) {
		t.Errorf("dry-run file with -data /tmp/y = %q", cfg.Sender.DryRunFile)
	}
	for _, args := range [][]string{{"-metrics-addr", ":9"}, {"-app-secret", "x"}} {
		if _, err := parseConfig(args, getenv); err == nil || !strings.Contains(err.Error(), "see --help") {
			t.Errorf("parseConfig(%q) = %v; want an unknown-flag error", args, err)
		}
	}
}

// TestAllSettingsMerge: ingest's and the sender's settings merge without a
// conflict, and none is lost but METRICS_ADDR.
func TestAllSettingsMerge(t *testing.T) {
	have := map[string]bool{}
	for _, d := range allSettings() {
		have[d.Env] = true
	}
	for _, d := range append(services.IngestSettings(), sender.Settings()...) {
		if !have[d.Env] && d.Env != "METRICS_ADDR" {
			t.Errorf("setting %s missing from all-in-one", d.Env)
		}
	}
}

// The Graph proof is keyed with CAPI_APP_SECRET only: never with the
// development webhook secret, nor with META_APP_SECRET's list.
func TestSenderProofSecret(t *testing.T) {
	env := map[string]string{"CAPI_ACCESS_TOKEN": "tok"}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sender.AppSecret != "" {
		t.Errorf("with CAPI_APP_SECRET unset the sender proves with %q; want no proof", cfg.Sender.AppSecret)
	}
	env["META_APP_SECRET"], env["META_VERIFY_TOKEN"], env["ADMIN_TOKEN"] = "a,b", "v", "adm"
	env["CAPI_APP_SECRET"] = "capi-secret"
	if cfg, err = parseConfig(nil, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.Sender.AppSecret != "capi-secret" {
		t.Errorf("sender app secret = %q; want CAPI_APP_SECRET's", cfg.Sender.AppSecret)
	}
}

// The embedded store has no replicas: REDIS_MIN_REPLICAS above 0 would
// refuse every write, so start-up refuses it and says why.
func TestEmbeddedStoreRefusesMinReplicas(t *testing.T) {
	env := map[string]string{"REDIS_MIN_REPLICAS": "1"}
	_, err := parseConfig(nil, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "REDIS_MIN_REPLICAS must be 0 with the embedded store") {
		t.Errorf("parseConfig with the embedded store and REDIS_MIN_REPLICAS=1 = %v; want refused", err)
	}
	env["REDIS_URL"] = "redis+sentinel://ctm@127.0.0.1:26379/0"
	if _, err := parseConfig(nil, func(k string) string { return env[k] }); err != nil {
		t.Errorf("parseConfig with REDIS_URL and REDIS_MIN_REPLICAS=1 = %v; want accepted", err)
	}
}
