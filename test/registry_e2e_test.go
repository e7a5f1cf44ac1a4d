package test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// The registry API on the built ingest's admin listener (issue 12):
// ADMIN_TOKEN guards it, a PUT creates (201) then replaces (200), a record
// without dataset_id is resolved through the (fake) Dataset API with
// CAPI_ACCESS_TOKEN, no answer shows a token, and the ctm CLI drives the
// same API.
func TestRegistryAPIE2E(t *testing.T) {
	ctm := binary(t, "ctm")
	key := "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	r := newFaultRig(t, faultOptions{})
	// The rig's ingest has no Graph settings: restart it with them.
	r.ingP.Stop(0)
	r.ingEnv = append(r.ingEnv, "REGISTRY_KEY="+key, "GRAPH_API_BASE="+r.graph.URL(), "CAPI_ACCESS_TOKEN="+fakegraph.DefaultToken)
	r.startIngest()

	const token = "EAAbusinessToken0123456789wxyz"
	put := func(id, body, bearer string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, r.admin+"/v1/businesses/"+id, strings.NewReader(body))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := r.httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	rec := `{"channel":"whatsapp","dataset_id":"5550001","access_token":"` + token + `"}`
	if code, _ := put("102290129340398", rec, ""); code != http.StatusUnauthorized {
		t.Fatalf("PUT without ADMIN_TOKEN = %d; want 401", code)
	}
	if code, out := put("102290129340398", rec, faultAdminToken); code != http.StatusCreated {
		t.Fatalf("PUT = %d %s; want 201", code, out)
	}
	if code, out := put("102290129340398", rec, faultAdminToken); code != http.StatusOK {
		t.Fatalf("second PUT = %d %s; want 200", code, out)
	}
	if code, out := put("102290129340398", `{"channel":"whatsapp","datasetid":"1"}`, faultAdminToken); code != http.StatusBadRequest || !strings.Contains(out, "datasetid") {
		t.Fatalf("PUT with an unknown field = %d %s; want 400 naming it", code, out)
	}
	// No dataset_id: resolved with CAPI_ACCESS_TOKEN at the fake Graph API.
	if code, out := put("109800000000002", `{"channel":"messenger"}`, faultAdminToken); code != http.StatusCreated {
		t.Fatalf("PUT without dataset_id = %d %s; want 201", code, out)
	}
	if _, ok := r.graph.DatasetID("109800000000002"); !ok {
		t.Error("the Dataset API was not asked for the page's dataset")
	}

	env := append(os.Environ(), "ADMIN_URL="+r.admin, "ADMIN_TOKEN="+faultAdminToken)
	ctmRun := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(ctm, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ctm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	show := ctmRun("businesses", "show", "102290129340398")
	if !strings.Contains(show, `"access_token_set":true`) || !strings.Contains(show, `"dataset_id":"5550001"`) {
		t.Errorf("ctm businesses show = %s; want the record with access_token_set", show)
	}
	if list := ctmRun("businesses", "list"); strings.Count(list, "\n") != 2 {
		t.Errorf("ctm businesses list = %q; want 2 records", list)
	}
	if out := ctmRun("businesses", "resume", "102290129340398"); !strings.Contains(out, "nothing to resume") {
		t.Errorf("ctm businesses resume = %q; want nothing to resume", out)
	}
	ds := filepath.Join(t.TempDir(), "datasets.json")
	os.WriteFile(ds, []byte(`{"102290129340398":{"dataset_id":"9"},"106540352242922":{"dataset_id":"5550002"}}`), 0o600)
	if out := ctmRun("businesses", "import", ds, "-channel", "whatsapp"); !strings.Contains(out, "imported 1, already registered 1") {
		t.Errorf("ctm businesses import = %q; want 1 imported, 1 kept", out)
	}
	ctmRun("businesses", "rm", "109800000000002")
	if list := ctmRun("businesses", "list"); strings.Contains(list, "109800000000002") {
		t.Errorf("after rm, list = %q", list)
	}
	for name, out := range map[string]string{"ingest": r.ingP.Output(), "show": show} {
		if strings.Contains(out, token) || strings.Contains(out, key[3:]) {
			t.Errorf("%s output holds the token or the key", name)
		}
	}
}

// Issue 12 end to end with the built binaries: two businesses registered
// through ingest's admin API with their own tokens and app secrets; TWO
// senders on the same consumer; each business's conversions reach the fake
// Graph with its own token (the fake checks each token's proof with its own
// app secret); a token changed through the API is used by the next request
// without a restart; a token error (190) pauses only that business; resume
// through the API ends the pause on both senders at once (PAUSE_INTERVAL is
// 10m: only the resume can explain a send within the test) and sends its
// parked messages back. Then no token, app secret or REGISTRY_KEY appears
// in any log line or API answer.
func TestRegistrySendersE2E(t *testing.T) {
	key := "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
	const (
		bizA, bizB = "1091000000000001", "1092000000000002"
		tokA       = "EAAe2eTokenOfBusinessA00000001"
		tokA2      = "EAAe2eTokenOfBusinessA00000002"
		tokB       = "EAAe2eTokenOfBusinessB00000001"
		secA       = "e2eappsecretofappa000000000001"
		secB       = "e2eappsecretofappb000000000001"
	)
	tokens := []string{fakegraph.DefaultToken, tokA, tokA2, tokB}
	r := newFaultRig(t, faultOptions{
		Tokens:     tokens,
		AppSecrets: map[string]string{tokA: secA, tokA2: secA, tokB: secB},
		IngestEnv:  []string{"REGISTRY_KEY=" + key},
		SenderEnv:  []string{"REGISTRY_KEY=" + key, "PAUSE_INTERVAL=10m", "REQUIRE_REFERRAL=none"},
	})
	s1 := r.currentSender()
	s2 := start(t, "sender", "", r.env)
	s2.waitOutput(faultSenderReady, 60*time.Second)

	var answers []string // every API answer, for the scan
	api := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, r.admin+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+faultAdminToken)
		resp, err := r.httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		answers = append(answers, string(out))
		return resp.StatusCode, string(out)
	}
	register := func(id, dataset, token, secret string, want int) {
		t.Helper()
		rec := `{"channel":"messenger","dataset_id":"` + dataset + `","access_token":"` + token + `","app_secret":"` + secret + `"}`
		if code, out := api(http.MethodPut, "/v1/businesses/"+id, rec); code != want {
			t.Fatalf("PUT %s = %d %s; want %d", id, code, out, want)
		}
	}
	register(bizA, "7001", tokA, secA, http.StatusCreated)
	register(bizB, "7002", tokB, secB, http.StatusCreated)

	n := 0
	send := func(biz string, count int) []string {
		t.Helper()
		var ids []string
		for range count {
			n++
			id := fmt.Sprintf("reg-%s-%d", r.run, n)
			data := fmt.Appendf(nil, `{"event_id":%q,"event_name":"Purchase","event_time":%d,"channel":"messenger","business_id":%q,"user_id":"psid-%d","custom_data":{"currency":"USD","value":10}}`,
				id, time.Now().Unix(), biz, n)
			if err := r.publish("conversions.messenger", id, data); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	arrived := func(what string, ids []string, d time.Duration) {
		t.Helper()
		waitFor(t, d, what, func() bool {
			c := r.graph.CountByEventID()
			for _, id := range ids {
				if c[id] == 0 {
					return false
				}
			}
			return true
		})
	}
	tokenOf := func() map[string]string {
		m := map[string]string{}
		for _, ev := range r.graph.Events() {
			m[ev.EventID] = ev.Token
		}
		return m
	}
	check := func(ids []string, token, what string) {
		t.Helper()
		got := tokenOf()
		for _, id := range ids {
			if got[id] != token {
				t.Errorf("%s: %s went with another token than the business's", what, id)
			}
		}
	}

	// 1. Each business with its own token and proof.
	a1, b1 := send(bizA, 20), send(bizB, 20)
	arrived("both businesses' conversions", append(append([]string{}, a1...), b1...), 60*time.Second)
	check(a1, tokA, "business A")
	check(b1, tokB, "business B")

	// 2. A new token for A through the API: the next request uses it. A
	// change is in effect within a few seconds (the senders poll every
	// second): wait three polls.
	register(bizA, "7001", tokA2, secA, http.StatusOK)
	// In effect once both senders' registry caches caught up with it.
	version, _, _, err := registry.NewStore(r.redis.Client(t), nil).Changes(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*proc{s1, s2} {
		metricsURL := "http://" + s.waitOutput(senderMetricsRE, 10*time.Second) + "/metrics"
		waitFor(t, 30*time.Second, "a sender's registry cache at the token change", func() bool {
			return scrapeGauge(t, metricsURL, "sender_registry_version") >= float64(version)
		})
	}
	a2 := send(bizA, 10)
	arrived("A's conversions after the token change", a2, 60*time.Second)
	check(a2, tokA2, "after the token change")

	// 3. A's new token breaks (190): only A pauses, on both senders.
	r.graph.RevokeToken(tokA2)
	var a3 []string
	paused := regexp.MustCompile(`"msg":"business paused[^\n]*"business_id":"` + bizA + `"`)
	waitFor(t, 60*time.Second, "both senders to pause A", func() bool {
		a3 = append(a3, send(bizA, 1)...)
		time.Sleep(200 * time.Millisecond) // spread A's messages over both senders' fetches
		return paused.MatchString(s1.Output()) && paused.MatchString(s2.Output())
	})
	b3 := send(bizB, 10)
	arrived("B's conversions while A is paused", b3, 60*time.Second)
	waitFor(t, 60*time.Second, "A's conversions parked", func() bool { return parkedNow(r) == len(a3) })
	if c := r.graph.CountByEventID(); slices.ContainsFunc(a3, func(id string) bool { return c[id] > 0 }) {
		t.Fatal("a conversion of the paused business reached the fake")
	}
	rdb := r.redis.Client(t)
	rec, ok := sender.ParsePauseRecord(rdb.Get(t.Context(), "ctm:biz:{"+bizA+"}:paused").Val())
	if !ok || rec.Code != 190 || rec.Class != "setup_fault" {
		t.Errorf("A's pause record = %+v; want code 190, class setup_fault", rec)
	}
	if n := rdb.Exists(t.Context(), "ctm:biz:{"+bizB+"}:paused").Val(); n != 0 {
		t.Error("B is paused too")
	}

	// 4. The token works again; resume through the API: both senders end
	// their 10-minute pause, the parked conversions go back, and new ones
	// go out at once.
	r.graph.SetTokens(tokens...)
	if code, out := api(http.MethodPost, "/v1/businesses/"+bizA+"/resume", ""); code != http.StatusAccepted {
		t.Fatalf("resume = %d %s; want 202", code, out)
	}
	a4 := send(bizA, 10)
	arrived("A's parked and new conversions after the resume", append(append([]string{}, a3...), a4...), 60*time.Second)
	waitFor(t, 30*time.Second, "nothing parked", func() bool { return parkedNow(r) == 0 })
	resumed := regexp.MustCompile(`"msg":"business resumed"[^\n]*"business_id":"` + bizA + `"`)
	for i, p := range []*proc{s1, s2} {
		if !resumed.MatchString(p.Output()) {
			t.Errorf("sender %d did not log A resumed", i+1)
		}
	}
	for id, c := range r.graph.CountByEventID() {
		if c != 1 {
			t.Errorf("%s reached the fake %d times; want once", id, c)
		}
	}
	check(append(a3, a4...), tokA2, "after the resume")
	if _, out := api(http.MethodGet, "/v1/businesses/"+bizA, ""); !strings.Contains(out, `"access_token_set":true`) {
		t.Errorf("GET = %s; want access_token_set", out)
	}

	// 5. The scan.
	secrets := map[string]string{"token A": tokA, "token A2": tokA2, "token B": tokB, "app secret A": secA,
		"app secret B": secB, "REGISTRY_KEY": key[3:]}
	outputs := map[string]string{"ingest": r.ingP.Output(), "sender 1": s1.Output(), "sender 2": s2.Output(),
		"API answers": strings.Join(answers, "\n")}
	for where, text := range outputs {
		for what, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds %s", where, what)
			}
		}
	}
}

// parkedNow is how many messages wait in PARKED (-1 when unknown).
func parkedNow(r *faultRig) int {
	n, err := r.parked(context.Background())
	if err != nil {
		return -1
	}
	return int(n)
}

var senderMetricsRE = regexp.MustCompile(`"msg":"metrics listening".*?"addr":"([^"]+)"`)

// scrapeGauge reads one gauge without labels from a Prometheus text page
// (-1 when it is not there yet).
func scrapeGauge(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
