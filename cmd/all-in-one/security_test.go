package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/embedstore"
	"github.com/ctmpipe/ctmpipe/internal/localcreds"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

var storeRE = regexp.MustCompile(`"msg":"embedded store ready".*?"addr":"([^"]+)"`)

// storeAddr is the embedded store's address, from the all-in-one's log.
func (a *allInOne) storeAddr(t *testing.T) string {
	t.Helper()
	m := storeRE.FindStringSubmatch(a.logs.String())
	if m == nil {
		t.Fatal("no \"embedded store ready\" with its address in the log")
	}
	return m[1]
}

// resp is a raw RESP connection: what any local process can open.
type resp struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRESP(t *testing.T, addr string) *resp {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	return &resp{t: t, c: c, r: bufio.NewReader(c)}
}

func (r *resp) send(args ...string) {
	r.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_, err := io.WriteString(r.c, b.String())
	must(r.t, err)
}

// reply reads the first line of a reply (enough for status, errors and
// integers).
func (r *resp) reply() string {
	r.t.Helper()
	line, err := r.r.ReadString('\n')
	must(r.t, err)
	return strings.TrimRight(line, "\r\n")
}

func (r *resp) do(args ...string) string {
	r.t.Helper()
	r.send(args...)
	return r.reply()
}

// TestEmbeddedServersRequireCredentials: a local process without the
// credentials gets NOAUTH from the store (no KEYS of contexts, no forged
// ledger key) and is refused by NATS (no dead letters, no capture); the
// credentials are in DATA_DIR/credentials.json, mode 0600, and never in
// the log.
func TestEmbeddedServersRequireCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	a := startAllInOne(t, testVars(dir))
	fi, err := os.Stat(localcreds.Path(dir))
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v; want 0600", localcreds.Path(dir), fi.Mode().Perm())
	}
	creds, err := localcreds.Load(dir)
	must(t, err)

	r := dialRESP(t, a.storeAddr(t))
	for _, cmd := range [][]string{{"KEYS", "*"}, {"GET", "c:{w:102290129340398:16315551234}"}, {"SET", "ctm:ledger:{order-1}", "sent"},
		{"EVAL", "while true do end", "0"}} {
		if got := r.do(cmd...); !strings.HasPrefix(got, "-NOAUTH") {
			t.Errorf("%s without AUTH = %q; want -NOAUTH", cmd[0], got)
		}
	}
	if got := r.do("AUTH", creds.StorePassword); got != "+OK" {
		t.Errorf("AUTH with the file's password = %q", got)
	}

	if nc, err := nats.Connect(a.nats); err == nil {
		nc.Close()
		t.Errorf("NATS connect without credentials succeeded; want it refused")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("NATS connect without credentials: %v; want an authorization violation", err)
	}
	if nc, err := nats.Connect(a.nats, nats.UserInfo(creds.NATSUser, "wrong")); err == nil {
		nc.Close()
		t.Errorf("NATS connect with a wrong password succeeded")
	}
	connectJS(t, a) // with the file's credentials, as the tools do

	for _, secret := range []string{creds.StorePassword, creds.NATSPassword} {
		if strings.Contains(a.logs.String(), secret) {
			t.Error("a generated password is in the log")
		}
	}
}

// TestBannerNamesCredentialsFile: the banner says where the credentials
// are, prints none, and its publish command finds them (-data-dir when
// DATA_DIR is not the tools' default).
func TestBannerNamesCredentialsFile(t *testing.T) {
	for _, tt := range []struct{ dataDir, wantFlag string }{{"data", ""}, {"/tmp/ctm", " -data-dir /tmp/ctm"}} {
		cfg, err := parseConfig(nil, func(k string) string { return map[string]string{"DATA_DIR": tt.dataDir}[k] })
		must(t, err)
		var out bytes.Buffer
		printBanner(&out, cfg, "127.0.0.1:8080", "127.0.0.1:8081", "nats://127.0.0.1:4222")
		for _, want := range []string{"credentials " + filepath.Join(tt.dataDir, localcreds.File),
			"go run ./cmd/publish -nats-url nats://127.0.0.1:4222" + tt.wantFlag + " examples/conversions.jsonl"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("banner (DATA_DIR %s) lacks %q:\n%s", tt.dataDir, want, out.String())
			}
		}
	}
}

// TestNonLoopbackNATSAddrRefused: an embedded NATS reachable from other
// machines needs NATS_USER and NATS_PASSWORD; the refusal says so.
func TestNonLoopbackNATSAddrRefused(t *testing.T) {
	secrets := map[string]string{"META_APP_SECRET": "s", "META_VERIFY_TOKEN": "v", "ADMIN_TOKEN": "a"}
	with := func(kv ...string) func(string) string {
		m := map[string]string{}
		for k, v := range secrets {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name    string
		env     func(string) string
		wantErr string
	}{
		{"all interfaces", with("NATS_ADDR", "0.0.0.0:4222"), "set NATS_USER and NATS_PASSWORD"},
		{"empty host", with("NATS_ADDR", ":4222"), "set NATS_USER and NATS_PASSWORD"},
		{"a LAN address", with("NATS_ADDR", "10.1.2.3:4222"), "or bind NATS_ADDR to 127.0.0.1"},
		{"user without password", with("NATS_ADDR", "0.0.0.0:4222", "NATS_USER", "orders"), "go together"},
		{"with credentials", with("NATS_ADDR", "0.0.0.0:4222", "NATS_USER", "orders", "NATS_PASSWORD", "pw-0123456789"), ""},
		{"loopback", with("NATS_ADDR", "127.0.0.1:4222"), ""},
		{"external NATS", with("NATS_ADDR", "0.0.0.0:4222", "NATS_URL", "nats://nats:4222"), ""},
	}
	for _, tt := range tests {
		_, err := parseConfig(nil, tt.env)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: parseConfig = %v; want it accepted", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: parseConfig = %v; want an error saying %q", tt.name, err, tt.wantErr)
		}
	}
}

// metric reads one unlabelled sample from the admin listener's /metrics.
func metric(t *testing.T, a *allInOne, token, name string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// startEndlessScript sends an endless script on an authenticated
// connection and waits until it holds the store (the all-in-one's gauge).
func startEndlessScript(t *testing.T, a *allInOne, vars map[string]string, src string) *resp {
	t.Helper()
	creds, err := localcreds.Load(vars["DATA_DIR"])
	must(t, err)
	r := dialRESP(t, a.storeAddr(t))
	if got := r.do("AUTH", creds.StorePassword); got != "+OK" {
		t.Fatalf("AUTH = %q", got)
	}
	r.send("EVAL", src, "0")
	waitFor(t, 30*time.Second, "the script to hold the store", func() bool {
		return metric(t, a, vars["ADMIN_TOKEN"], "embedded_store_script_running") == "1"
	})
	return r
}

// TestEndlessScriptKeepsWebhooksAnswered: an endless script answers an
// error at STORE_SCRIPT_BUDGET, a webhook posted while it runs gets 200
// (the budget is under STORE_TIMEOUT), and the store serves on.
func TestEndlessScriptKeepsWebhooksAnswered(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	vars := testVars(t.TempDir())
	vars["STORE_SCRIPT_BUDGET"] = "2s"
	a := startAllInOne(t, vars)
	r := startEndlessScript(t, a, vars, "while true do pcall(function() while true do end end) end")

	body, err := os.ReadFile(filepath.Join("..", "..", "examples", "webhooks", "messenger_ad_referral.json"))
	must(t, err)
	req, _ := http.NewRequest(http.MethodPost, a.ingest+"/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", webhook.Sign(body, []byte(vars["META_APP_SECRET"])))
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("webhook while a script runs = %d; want 200", res.StatusCode)
	}
	if got := r.reply(); !strings.Contains(got, "ran past its budget of 2s") {
		t.Errorf("endless EVAL = %q; want the budget error", got)
	}
	if got := r.do("PING"); got != "+PONG" {
		t.Errorf("PING after the script = %q", got)
	}
	if got := metric(t, a, vars["ADMIN_TOKEN"], "embedded_store_scripts_stopped_total"); got != "1" {
		t.Errorf("embedded_store_scripts_stopped_total = %q; want 1", got)
	}
}

// TestSIGTERMWithScriptRunning: with a script running that neither its
// budget (1h here) nor SCRIPT KILL (it wrote) would end, SIGTERM (ctx
// cancelled, as main's signal.NotifyContext does) still ends run within
// SHUTDOWN_TIMEOUT. Before, the store's Close waited on the script forever.
func TestSIGTERMWithScriptRunning(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	vars := testVars(t.TempDir())
	vars["STORE_SCRIPT_BUDGET"] = "1h"
	vars["SHUTDOWN_TIMEOUT"] = "2s"
	vars["HTTP_TIMEOUT"] = "1s" // the sender wants SHUTDOWN_TIMEOUT >= HTTP_TIMEOUT
	a := startAllInOne(t, vars)
	startEndlessScript(t, a, vars, "redis.call('SET', 'k', '1') while true do end")
	kill := dialRESP(t, a.storeAddr(t))
	creds, err := localcreds.Load(vars["DATA_DIR"])
	must(t, err)
	kill.do("AUTH", creds.StorePassword)
	if got := kill.do("SCRIPT", "KILL"); !strings.HasPrefix(got, "-UNKILLABLE") {
		t.Errorf("SCRIPT KILL of a script that wrote = %q; want -UNKILLABLE", got)
	}
	began := time.Now()
	a.cancel()
	select {
	case err := <-a.done:
		a.done <- err // for the cleanup
		if took := time.Since(began); took > 2*time.Second+3*time.Second {
			t.Errorf("run took %v to return after SIGTERM; want about SHUTDOWN_TIMEOUT (2s) at most", took)
		}
	case <-time.After(time.Minute):
		t.Fatal("all-in-one still running a minute after SIGTERM")
	}
}

// TestStoreClientRespectsDeadline: the services' client of the embedded
// store ends a call at its context's deadline (ingest passes what is left
// of RESPONSE_DEADLINE), not at go-redis's 3 s read timeout and retries.
func TestStoreClientRespectsDeadline(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir, testStorePassword, time.Hour)
	must(t, err)
	defer st.Close()
	r := dialRESP(t, st.Addr())
	r.do("AUTH", testStorePassword)
	r.send("EVAL", "while true do end", "0")
	waitFor(t, 30*time.Second, "the script to hold the store", func() bool { return st.Stats().ScriptRunning })

	c := storeClient(st, testStorePassword)
	defer c.Close()
	const deadline = time.Second
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	began := time.Now()
	err = c.Get(ctx, "k").Err()
	took := time.Since(began)
	if err == nil {
		t.Fatal("GET answered while a script held the store")
	}
	if took > deadline+time.Second {
		t.Errorf("GET with a %v deadline returned after %v; want by its deadline", deadline, took)
	}
	if got := dialAuthed(t, st).do("SCRIPT", "KILL"); got != "+OK" {
		t.Errorf("SCRIPT KILL = %q", got)
	}
	if got := r.reply(); !strings.Contains(got, "SCRIPT KILL") {
		t.Errorf("killed EVAL = %q", got)
	}
	must(t, c.Set(t.Context(), "k", "v", 0).Err())
}

func dialAuthed(t *testing.T, st *embedstore.Store) *resp {
	t.Helper()
	r := dialRESP(t, st.Addr())
	if got := r.do("AUTH", testStorePassword); got != "+OK" {
		t.Fatalf("AUTH = %q", got)
	}
	return r
}

// TestDevRegistryKeyRefusedForOtherKeyIDs: without REGISTRY_KEY, the
// all-in-one makes no development key while the registry holds secrets
// sealed under key ids it would lack, and names them; without such
// records it makes one, and keeps using it.
func TestDevRegistryKeyRefusedForOtherKeyIDs(t *testing.T) {
	dir := t.TempDir()
	_, c := openTestStore(t, dir)
	ctx := t.Context()
	log := zap.NewNop()
	put := func(keyring, id string) {
		t.Helper()
		keys, err := registry.ParseKeyring(keyring)
		must(t, err)
		_, err = registry.NewStore(c, keys).Put(ctx, registry.Business{ID: id, Channel: registry.Messenger,
			DatasetID: "5550001", AccessToken: registry.NewSecret("EAAtoken0123456789"), Enabled: true})
		must(t, err)
	}
	// Records without secrets need no key.
	_, err := registry.NewStore(c, nil).Put(ctx, registry.Business{ID: "109800000000009", Channel: registry.Messenger, DatasetID: "1", Enabled: true})
	must(t, err)

	k1, err := registry.NewKey("k1")
	must(t, err)
	put(k1, "109800000000001")
	_, _, err = devRegistryKey(ctx, dir, c, log)
	if err == nil || !strings.Contains(err.Error(), "key id(s) k1") || !strings.Contains(err.Error(), "set REGISTRY_KEY") {
		t.Errorf("devRegistryKey with a record sealed under k1 = %v; want a refusal naming k1 and REGISTRY_KEY", err)
	}
	if _, err := os.Stat(filepath.Join(dir, registry.DevKeyFile)); err == nil {
		t.Error("a development key was made although it could not open the registry")
	}
	must(t, registry.NewStore(c, nil).Delete(ctx, "109800000000001"))

	key, file, err := devRegistryKey(ctx, dir, c, log)
	must(t, err)
	put(key, "109800000000002")
	if again, _, err := devRegistryKey(ctx, dir, c, log); err != nil || again != key {
		t.Errorf("devRegistryKey after a restart = %v; want the same key", err)
	}
	// The key file lost: a new "dev" key could not open the old "dev" records.
	must(t, os.Remove(file))
	if _, _, err := devRegistryKey(ctx, dir, c, log); err == nil || !strings.Contains(err.Error(), "key id(s) dev") {
		t.Errorf("devRegistryKey without its file, records sealed under dev = %v; want a refusal naming dev", err)
	}
}

// TestREADMEWalkUsesBanner: the README's five minutes with the all-in-one
// are the commands the banner prints with the default addresses, so that
// a newcomer who follows either sees the same.
func TestREADMEWalkUsesBanner(t *testing.T) {
	cfg, err := parseConfig(nil, func(string) string { return "" })
	must(t, err)
	var out bytes.Buffer
	printBanner(&out, cfg, "127.0.0.1:8080", "127.0.0.1:8081", "nats://127.0.0.1:4222")
	readme, err := os.ReadFile("../../README.md")
	must(t, err)
	_, try, ok := strings.Cut(out.String(), "Try it")
	if !ok {
		t.Fatalf("the banner has no Try it:\n%s", out.String())
	}
	n := 0
	for _, line := range strings.Split(try, "\n")[1:] {
		cmd := strings.TrimSpace(line)
		if !strings.Contains(cmd, "go run ./cmd/") {
			continue
		}
		n++
		// The banner names no ids (it is treated like a log); the README
		// fills in the example's.
		prefix, _, _ := strings.Cut(cmd, "BUSINESS_ID")
		if !strings.Contains(string(readme), prefix) {
			t.Errorf("README.md does not use the banner's command %q", cmd)
		}
	}
	if n < 4 {
		t.Errorf("only %d go run commands in the banner:\n%s", n, out.String())
	}
}
