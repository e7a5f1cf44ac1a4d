package sender_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

var testRegistryKey = "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))

// Secrets of the registry tests: none may appear in a log line.
const (
	regTokenA  = "EAAtokenOfBusinessA000000000001"
	regTokenA2 = "EAAtokenOfBusinessA000000000002"
	regTokenB  = "EAAtokenOfBusinessB000000000001"
	regSecretA = "secretofappa0000000000000000001"
	regSecretB = "secretofappb0000000000000000001"
)

// regEnv is a sender reading the registry (senderKey: its REGISTRY_KEY,
// "" for none) and a registry store with the key records are written with.
func regEnv(t *testing.T, fo fakegraph.Options, senderKey string, configure func(*sender.Config)) (*env, *registry.Store) {
	t.Helper()
	e := newEnvGraph(t, fo, func(c *sender.Config) {
		c.RegistryKey = senderKey
		if configure != nil {
			configure(c)
		}
	}, func(d *sender.Deps) {
		cfg := sender.DefaultConfig()
		cfg.RegistryKey = senderKey
		reg, err := sender.NewRegistry(cfg, d.Redis, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		d.Registry = reg
	})
	keys, err := registry.ParseKeyring(testRegistryKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.noSecretsLogged(regTokenA, regTokenA2, regTokenB, regSecretA, regSecretB, testRegistryKey[3:])
	})
	return e, registry.NewStore(e.rdb, keys)
}

func (e *env) noSecretsLogged(secrets ...string) {
	for _, entry := range e.logs.All() {
		b, _ := json.Marshal(entry.ContextMap())
		text := entry.Message + " " + string(b)
		for _, s := range secrets {
			if strings.Contains(text, s) {
				e.t.Errorf("log entry %q holds a secret", entry.Message)
			}
		}
	}
}

func put(t *testing.T, st *registry.Store, b registry.Business) {
	t.Helper()
	if _, err := st.Put(t.Context(), b); err != nil {
		t.Fatal(err)
	}
}

// Each registered business's events go out with its own token, proof, test
// event code and partner agent; a token changed in the registry is used by
// the next request, without a restart; a business not in the registry
// keeps CAPI_ACCESS_TOKEN.
func TestRegistryCredentialsPerBusiness(t *testing.T) {
	fo := fakegraph.Options{Tokens: []string{fakegraph.DefaultToken, regTokenA, regTokenB},
		AppSecrets: map[string]string{regTokenA: regSecretA, regTokenB: regSecretB}}
	e, st := regEnv(t, fo, testRegistryKey, nil)
	put(t, st, registry.Business{ID: "1001", Channel: registry.Messenger, DatasetID: "7001", Enabled: true,
		AccessToken: registry.NewSecret(regTokenA), AppSecret: registry.NewSecret(regSecretA),
		TestEventCode: "TESTA", PartnerAgent: "agent-a"})
	put(t, st, registry.Business{ID: "1002", Channel: registry.Messenger, DatasetID: "7002", Enabled: true,
		AccessToken: registry.NewSecret(regTokenB), AppSecret: registry.NewSecret(regSecretB)})
	for _, b := range []string{"1001", "1002", "1003"} {
		e.touch(attribution.Messenger, b, "psid-"+b)
		e.publish("messenger", conv("r1-"+b, "messenger", b, "psid-"+b), "r1-"+b)
	}
	e.waitSent(20*time.Second, "r1-1001", "r1-1002", "r1-1003")
	want := map[string][3]string{ // event → token, test code, partner agent
		"r1-1001": {regTokenA, "TESTA", "agent-a"},
		"r1-1002": {regTokenB, "", ""},
		"r1-1003": {fakegraph.DefaultToken, "", ""},
	}
	for _, ev := range e.fake.Events() {
		if w := want[ev.EventID]; [3]string{ev.Token, ev.TestEventCode, ev.PartnerAgent} != w {
			t.Errorf("%s went with test code %q, agent %q (token right: %v); want the business's", ev.EventID, ev.TestEventCode, ev.PartnerAgent, ev.Token == w[0])
		}
	}

	// A new token for 1001, issued by the same app.
	e.fake.SetAppSecret(regTokenA2, regSecretA)
	e.fake.SetTokens(fakegraph.DefaultToken, regTokenA2, regTokenB)
	put(t, st, registry.Business{ID: "1001", Channel: registry.Messenger, DatasetID: "7001", Enabled: true,
		AccessToken: registry.NewSecret(regTokenA2), AppSecret: registry.NewSecret(regSecretA), TestEventCode: "TESTA", PartnerAgent: "agent-a"})
	// In effect once the sender's cache has caught up with the change's
	// version (it polls every second).
	e.registryCaughtUp(st)
	e.publish("messenger", conv("r2-1001", "messenger", "1001", "psid-1001"), "r2-1001")
	e.waitSent(20*time.Second, "r2-1001")
	for _, ev := range e.fake.Events() {
		if ev.EventID == "r2-1001" && ev.Token != regTokenA2 {
			t.Error("after the token change, the event went with another token")
		}
	}
	e.settled(20 * time.Second)
	e.sentOnce("r1-1001", "r1-1002", "r1-1003", "r2-1001")
}

// A disabled business's conversions are parked, neither sent nor dropped,
// and go out once it is enabled again.
func TestRegistryDisabledParksUntilEnabled(t *testing.T) {
	e, st := regEnv(t, fakegraph.Options{}, testRegistryKey, nil)
	b := registry.Business{ID: "1001", Channel: registry.Messenger, DatasetID: "7001"}
	put(t, st, b) // Enabled: false
	e.touch(attribution.Messenger, "1001", "psid-1")
	e.publish("messenger", conv("d-1", "messenger", "1001", "psid-1"), "d-1")
	e.waitFor(20*time.Second, "the disabled business's conversion parked", func() bool { return e.parked() == 1 })
	e.waitFor(5*time.Second, "the hold logged", func() bool {
		return e.logs.FilterMessageSnippet("disabled in the registry").Len() == 1
	})
	if n := len(e.fake.Events()); n != 0 {
		t.Fatalf("%d events sent for a disabled business", n)
	}
	if n := len(e.dlq()); n != 0 {
		t.Fatalf("%d dead letters; want the conversion parked", n)
	}
	b.Enabled = true
	put(t, st, b)
	e.settled(30 * time.Second)
	e.sentOnce("d-1")
}

// A record with encrypted secrets on a sender without REGISTRY_KEY: the
// business's conversions are parked (not dropped, not sent with another
// token) and the sender says once which setting is missing.
func TestRegistrySealedWithoutKeyParks(t *testing.T) {
	e, st := regEnv(t, fakegraph.Options{Tokens: []string{fakegraph.DefaultToken, regTokenA}}, "", nil)
	put(t, st, registry.Business{ID: "1001", Channel: registry.Messenger, DatasetID: "7001", Enabled: true,
		AccessToken: registry.NewSecret(regTokenA)})
	e.touch(attribution.Messenger, "1001", "psid-1")
	e.publish("messenger", conv("k-1", "messenger", "1001", "psid-1"), "k-1")
	e.publish("messenger", conv("k-2", "messenger", "1001", "psid-1"), "k-2")
	e.waitFor(20*time.Second, "both parked", func() bool { return e.parked() == 2 })
	if n := len(e.fake.Events()); n != 0 {
		t.Fatalf("%d events sent without the business's token", n)
	}
	if n := e.logs.FilterMessageSnippet("REGISTRY_KEY is not set").Len(); n != 1 {
		t.Errorf("%d log lines name REGISTRY_KEY; want 1", n)
	}
}

// A record without dataset_id: the Dataset API is asked with the business's
// own token and a proof keyed with its own app secret (the fake refuses any
// other), and the events go to that dataset.
func TestRegistryDatasetLookupWithBusinessSecret(t *testing.T) {
	fo := fakegraph.Options{Tokens: []string{fakegraph.DefaultToken, regTokenB}, StrictDatasets: true,
		AppSecret: "default-app-secret", AppSecrets: map[string]string{regTokenB: regSecretB}}
	e, st := regEnv(t, fo, testRegistryKey, func(c *sender.Config) { c.AppSecret = "default-app-secret" })
	put(t, st, registry.Business{ID: "1002", Channel: registry.Messenger, Enabled: true,
		AccessToken: registry.NewSecret(regTokenB), AppSecret: registry.NewSecret(regSecretB)})
	e.touch(attribution.Messenger, "1002", "psid-2")
	e.publish("messenger", conv("l-1", "messenger", "1002", "psid-2"), "l-1")
	e.settled(20 * time.Second)
	e.sentOnce("l-1")
	want, ok := e.fake.DatasetID("1002")
	if !ok {
		t.Fatal("no dataset created for 1002")
	}
	if ev := e.fake.Events()[0]; ev.DatasetID != want || ev.Token != regTokenB {
		t.Errorf("event went to dataset %s; want %s with the business's token", ev.DatasetID, want)
	}
}

// require_referral=false in a page's record lets its conversions go without
// a stored referral although REQUIRE_REFERRAL lists messenger.
func TestRegistryRequireReferralOverride(t *testing.T) {
	e, st := regEnv(t, fakegraph.Options{}, testRegistryKey, nil)
	no := false
	put(t, st, registry.Business{ID: "1001", Channel: registry.Messenger, DatasetID: "7001", Enabled: true, RequireReferral: &no})
	e.publish("messenger", conv("n-1", "messenger", "1001", "psid-1"), "n-1") // no touch
	e.settled(20 * time.Second)
	e.sentOnce("n-1")
}

// A token error pauses the business on this sender for PAUSE_INTERVAL (an
// hour here) and writes the pause record health shows; a resume through the
// shared keys (what POST /v1/businesses/{id}/resume runs) ends this
// sender's in-memory pause within seconds: the parked conversion and a new
// one are sent long before the hour is over.
func TestResumeEndsInMemoryPause(t *testing.T) {
	e, st := regEnv(t, fakegraph.Options{Tokens: []string{fakegraph.DefaultToken}}, testRegistryKey,
		func(c *sender.Config) { c.PauseInterval = time.Hour })
	put(t, st, registry.Business{ID: "1001", Channel: registry.Messenger, DatasetID: "7001", Enabled: true,
		AccessToken: registry.NewSecret(regTokenA)}) // not valid at the fake yet: 190
	e.touch(attribution.Messenger, "1001", "psid-1")
	e.publish("messenger", conv("p-1", "messenger", "1001", "psid-1"), "p-1")
	e.waitFor(20*time.Second, "the conversion parked", func() bool { return e.parked() == 1 })

	v, err := e.rdb.Get(t.Context(), "ctm:biz:{1001}:paused").Result()
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := sender.ParsePauseRecord(v)
	if !ok || rec.Code != 190 || rec.Class != "setup_fault" || rec.Message == "" || time.Since(time.UnixMilli(rec.Since)) > time.Minute {
		t.Errorf("pause record = %s; want since, code 190, class setup_fault and Meta's message", v)
	}
	if strings.Contains(v, regTokenA) {
		t.Error("the pause record holds the token")
	}

	e.fake.SetTokens(fakegraph.DefaultToken, regTokenA)
	if _, err := (sender.Resumer{Redis: e.rdb, JS: e.js}).Resume(t.Context(), "1001"); err != nil {
		t.Fatal(err)
	}
	e.publish("messenger", conv("p-2", "messenger", "1001", "psid-1"), "p-2")
	e.settled(30 * time.Second) // well within the hour
	e.sentOnce("p-1", "p-2")
	if e.logs.FilterMessage("business resumed").Len() == 0 {
		t.Error("no 'business resumed' log")
	}
}

// registryCaughtUp waits until the sender's registry cache has seen every
// change st holds now (sender_registry_version).
func (e *env) registryCaughtUp(st *registry.Store) {
	e.t.Helper()
	v, _, _, err := st.Changes(e.t.Context(), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	e.waitFor(20*time.Second, fmt.Sprintf("the sender's registry cache at version %d", v), func() bool {
		return e.metric("sender_registry_version", nil) >= float64(v)
	})
}
