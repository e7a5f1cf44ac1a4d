package test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/localcreds"
)

var (
	walkIngestRE = regexp.MustCompile(`"msg":"listening".*?"addr":"([^"]+)"`)
	walkNATSRE   = regexp.MustCompile(`"msg":"nats listening".*?"url":"([^"]+)"`)
	walkAdminRE  = regexp.MustCompile(`"msg":"admin listening".*?"addr":"([^"]+)"`)
)

// walkthrough is the all-in-one binary under test.
type walkthrough struct {
	p                   *proc
	ingest, admin, nats string
}

func startWalkthrough(t *testing.T, dir string, env []string) walkthrough {
	t.Helper()
	p := start(t, "all-in-one", dir, env)
	w := walkthrough{p: p}
	w.ingest = "http://" + p.waitOutput(walkIngestRE, time.Minute)
	w.nats = p.waitOutput(walkNATSRE, time.Minute)
	w.admin = "http://" + p.waitOutput(walkAdminRE, time.Minute)
	waitHTTP(t, w.ingest+"/healthz", time.Minute)
	return w
}

// TestReplayWalkthroughSurvivesKill follows examples/README.md with the real
// binaries: replay the examples into all-in-one, publish the conversions,
// SIGKILL it, start it again; the contexts and the record of sent events
// must have survived, and the capture must replay.
func TestReplayWalkthroughSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	env := []string{
		"META_APP_SECRET=walk-secret", "META_VERIFY_TOKEN=walk-verify", "ADMIN_TOKEN=walk-admin",
		"ONPREM_SECRET=walk-onprem-secret-0001", "ONPREM_WABA_ID=104222339999001",
		"INGEST_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "NATS_ADDR=127.0.0.1:0", "DATA_DIR=" + filepath.Join(dir, "data"),
	}
	w := startWalkthrough(t, dir, env)
	rp := start(t, "replay", "", []string{"META_APP_SECRET=walk-secret", "ONPREM_SECRET=walk-onprem-secret-0001"},
		"-target", w.ingest+"/webhook", replayExample(t, "webhooks"), replayExample(t, "onprem"))
	if code := replayExit(rp, time.Minute); code != 0 || !strings.Contains(rp.Output(), "4 ok, 0 failed") {
		t.Fatalf("replay: exit %d:\n%s", code, rp.Output())
	}

	conversions := lines(t, replayExample(t, "conversions.jsonl"))
	js := walkJS(t, w.nats, filepath.Join(dir, "data"))
	for _, c := range conversions {
		walkPublish(t, js, c, "")
	}
	dryRun := filepath.Join(dir, "data", "capi-dryrun.jsonl")
	walkIdle(t, js, dryRun, "example-onprem-lead-4", 5)
	w.p.Kill() // a crash: no shutdown, no final write

	w = startWalkthrough(t, dir, env)
	for path, ad := range map[string]string{
		"whatsapp/102290129340398/16315551234":         "120212345678901234",
		"whatsapp/104222339999001/16315551234":         "1234567890",
		"messenger/109876543210987/6789012345678901":   "120210000000000111",
		"instagram/17841405555555555/1234567890123456": "120219999999999222",
	} {
		walkContext(t, w.admin, path, ad)
	}
	js = walkJS(t, w.nats, filepath.Join(dir, "data"))
	for _, c := range conversions {
		walkPublish(t, js, c, "-again") // past JetStream's dedup: only the ledger stops these
	}
	walkPublish(t, js, []byte(`{"event_id":"after-kill","event_name":"Purchase","channel":"instagram","business_id":"17841405555555555","user_id":"1234567890123456","custom_data":{"currency":"BRL","value":5}}`), "")
	walkIdle(t, js, dryRun, "after-kill", 6)

	// The capture outlived the kill too: a dry run over it routes the
	// On-Premises body by its Ctm-Path, and a real replay is accepted.
	dry := start(t, "replay", "", []string{"ONPREM_WABA_ID=104222339999001"}, "-dry-run", "-from-capture", "-nats", w.nats, "-data-dir", filepath.Join(dir, "data"), "-since", "1h")
	if code := replayExit(dry, time.Minute); code != 0 || strings.Count(dry.Output(), `"path":"/webhook/onprem"`) != 1 ||
		!strings.Contains(dry.Output(), "4 bodies: 4 ok") {
		t.Errorf("replay -dry-run -from-capture: exit %d:\n%s", code, dry.Output())
	}
	again := start(t, "replay", "", []string{"META_APP_SECRET=walk-secret", "ONPREM_SECRET=walk-onprem-secret-0001"},
		"-target", w.ingest+"/webhook", "-from-capture", "-nats", w.nats, "-data-dir", filepath.Join(dir, "data"), "-since", "1h")
	if code := replayExit(again, time.Minute); code != 0 || !strings.Contains(again.Output(), "4 ok, 0 failed") {
		t.Errorf("replay -from-capture: exit %d:\n%s", code, again.Output())
	}
	for _, personal := range []string{"16315551234", "6789012345678901", "1234567890123456", "ARAkLkA8"} {
		if strings.Contains(w.p.Output(), personal) {
			t.Errorf("all-in-one logs contain personal data %q", personal)
		}
	}
}

// walkJS connects to the all-in-one's NATS with the credentials in its
// data directory, as its tools do.
func walkJS(t *testing.T, url, dataDir string) jetstream.JetStream {
	t.Helper()
	url, creds, found, err := localcreds.NATS(url, dataDir)
	if err != nil || !found {
		t.Fatalf("credentials in %s: found %v, %v", dataDir, found, err)
	}
	nc, err := nats.Connect(url, creds...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "stream CONVERSIONS", func() bool {
		_, err := js.Stream(t.Context(), "CONVERSIONS")
		return err == nil
	})
	return js
}

func walkPublish(t *testing.T, js jetstream.JetStream, conv []byte, suffix string) {
	t.Helper()
	var c struct {
		EventID string `json:"event_id"`
		Channel string `json:"channel"`
	}
	if err := json.Unmarshal(conv, &c); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("conversions." + c.Channel)
	m.Data = conv
	m.Header.Set(jetstream.MsgIDHeader, c.EventID+suffix)
	if _, err := js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
}

// walkIdle waits until event id is in the dry-run file and no conversion is
// pending or unacked, then checks the file holds want events, each once.
func walkIdle(t *testing.T, js jetstream.JetStream, file, id string, want int) {
	t.Helper()
	count := func() map[string]int {
		ids := map[string]int{}
		for _, l := range lines(t, file) {
			var req struct {
				Data []struct {
					EventID string `json:"event_id"`
				} `json:"data"`
			}
			if json.Unmarshal(l, &req) == nil {
				for _, e := range req.Data {
					ids[e.EventID]++
				}
			}
		}
		return ids
	}
	waitFor(t, 2*time.Minute, id+" sent and the consumer idle", func() bool {
		if count()[id] == 0 {
			return false
		}
		st, err := js.Stream(t.Context(), "CONVERSIONS")
		if err != nil {
			return false
		}
		l := st.ListConsumers(t.Context())
		for ci := range l.Info() {
			if ci.NumPending != 0 || ci.NumAckPending != 0 {
				return false
			}
		}
		return l.Err() == nil
	})
	ids := count()
	if len(ids) != want {
		t.Errorf("dry-run file has %d distinct events; want %d: %v", len(ids), want, ids)
	}
	for e, n := range ids {
		if n != 1 {
			t.Errorf("event %s written %d times; want once", e, n)
		}
	}
}

func walkContext(t *testing.T, base, path, wantAd string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/contexts/"+path, nil)
	req.Header.Set("Authorization", "Bearer walk-admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		AdID string `json:"ad_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusOK || c.AdID != wantAd {
		t.Errorf("GET /v1/contexts/%s after the kill: %d, ad_id %q (%v); want 200, %s", path, resp.StatusCode, c.AdID, err, wantAd)
	}
}
