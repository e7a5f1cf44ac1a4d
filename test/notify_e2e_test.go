package test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/internal/notify"
)

// notifyReceiver is the partner's endpoint: it answers 500 to the first
// attempt of each notification type listed in failFirst, and keeps every
// body it accepted with whether its signature verified.
type notifyReceiver struct {
	mu        sync.Mutex
	failFirst map[string]bool
	attempts  map[string]int
	bodies    [][]byte
	unsigned  int
}

func (rc *notifyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	typ := r.Header.Get(notify.HeaderType)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts[typ]++
	if !notify.Verify(faultNotifySecret, body, r.Header.Get(notify.HeaderSignature)) {
		rc.unsigned++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if rc.failFirst[typ] && rc.attempts[typ] == 1 {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	rc.bodies = append(rc.bodies, body)
}

// find returns the accepted notifications of type typ and the attempts
// made for that type.
func (rc *notifyReceiver) find(typ string) ([]notify.Notification, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []notify.Notification
	for _, b := range rc.bodies {
		var n notify.Notification
		if json.Unmarshal(b, &n) == nil && n.Type == typ {
			out = append(out, n)
		}
	}
	return out, rc.attempts[typ]
}

const faultNotifySecret = "e2e-notify-secret-6f1d"

// Issue 26: the fake Graph answers 190 for one business; the senders pause
// it and a signed business.paused reaches the partner's receiver, retried
// after its 500; fixing the token through the API and resuming sends
// business.resumed. No notification holds a token or a personal id.
func TestNotifyPausedResumedE2E(t *testing.T) {
	key := "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	const (
		biz    = "1093000000000003"
		tok    = "EAAe2eNotifyTokenOfBusiness0001"
		tokNew = "EAAe2eNotifyTokenOfBusiness0002"
	)
	rc := &notifyReceiver{failFirst: map[string]bool{notify.TypeBusinessPaused: true}, attempts: map[string]int{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	notifyEnv := []string{"NOTIFY_URLS=" + srv.URL + "/hooks/ctm", "NOTIFY_SECRET=" + faultNotifySecret,
		"NOTIFY_RETRY_MIN=100ms", "NOTIFY_RETRY_MAX=500ms"}
	tokens := []string{fakegraph.DefaultToken, tok, tokNew}
	r := newFaultRig(t, faultOptions{
		Tokens:    tokens,
		IngestEnv: append([]string{"REGISTRY_KEY=" + key}, notifyEnv...),
		SenderEnv: append([]string{"REGISTRY_KEY=" + key, "PAUSE_INTERVAL=10m", "REQUIRE_REFERRAL=none"}, notifyEnv...),
	})
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
		return resp.StatusCode, string(out)
	}
	register := func(token string, want int) {
		t.Helper()
		rec := `{"channel":"messenger","dataset_id":"7093","access_token":"` + token + `"}`
		if code, out := api(http.MethodPut, "/v1/businesses/"+biz, rec); code != want {
			t.Fatalf("PUT = %d %s; want %d", code, out, want)
		}
	}
	n := 0
	send := func() string {
		t.Helper()
		n++
		id := fmt.Sprintf("ntf-%s-%d", r.run, n)
		data := fmt.Appendf(nil, `{"event_id":%q,"event_name":"Purchase","event_time":%d,"channel":"messenger","business_id":%q,"user_id":"psid-notify-%d","custom_data":{"currency":"USD","value":10}}`,
			id, time.Now().Unix(), biz, n)
		if err := r.publish("conversions.messenger", id, data); err != nil {
			t.Fatal(err)
		}
		return id
	}
	register(tok, http.StatusCreated)

	// 1. Meta refuses the business's token (190): business.paused, after
	// one 500 from the receiver.
	r.graph.RevokeToken(tok)
	var paused []notify.Notification
	var attempts int
	waitFor(t, 60*time.Second, "business.paused at the receiver", func() bool {
		if paused, attempts = rc.find(notify.TypeBusinessPaused); len(paused) > 0 {
			return true
		}
		send()
		time.Sleep(100 * time.Millisecond) // one conversion per poll, not a flood
		return false
	})
	if attempts < 2 {
		t.Errorf("business.paused attempts = %d; want the 500 retried", attempts)
	}
	p := paused[0]
	if p.BusinessID != biz || p.MetaError == nil || p.MetaError.Code != 190 || p.PausedSince == nil || p.Reason == "" {
		t.Errorf("business.paused = %+v; want the business, code 190, since and a reason", p)
	}

	// 2. The token fixed through the API, then resumed: business.resumed.
	r.graph.SetTokens(tokens...)
	register(tokNew, http.StatusOK)
	code, out := api(http.MethodPost, "/v1/businesses/"+biz+"/resume", "")
	if code != http.StatusAccepted {
		t.Fatalf("resume = %d %s; want 202", code, out)
	}
	var resumed struct{ Parked int }
	if err := json.Unmarshal([]byte(out), &resumed); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "business.resumed at the receiver", func() bool {
		got, _ := rc.find(notify.TypeBusinessResumed)
		return len(got) == 1 && got[0].BusinessID == biz
	})

	// 3. The audit log (issue 26): the registry writes, the resume and a
	// redrive, each with its actor, and no secret.
	if code, out := api(http.MethodPost, "/v1/dead-letters/redrive", `{"business":"`+biz+`"}`); code != http.StatusOK {
		t.Fatalf("redrive = %d %s; want 200", code, out)
	}
	code, out = api(http.MethodGet, "/v1/audit?limit=50", "")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/audit = %d %s", code, out)
	}
	var log struct {
		Entries []struct {
			Actor, Action, Target string
			Changes               []string
		}
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range log.Entries {
		if e.Actor != "admin_token" {
			t.Errorf("audit entry %+v: want actor admin_token", e)
		}
		seen[e.Action+" "+e.Target+" "+strings.Join(e.Changes, "; ")] = true
	}
	for _, want := range []string{
		"dead_letters.redrive business=" + biz + " matched: 0; redriven: 0",
		"business.resume " + biz + " was_paused: true; parked sent back: " + fmt.Sprint(resumed.Parked),
		"business.put " + biz + " access_token changed",
	} {
		if !seen[want] {
			t.Errorf("audit log lacks %q; has %v", want, seen)
		}
	}
	for _, bad := range []string{tok, tokNew, key, faultNotifySecret} {
		if strings.Contains(out, bad) {
			t.Errorf("audit log holds a secret: %s", out)
		}
	}

	// 4. Nothing secret or personal in any body, and every one signed.
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.unsigned > 0 {
		t.Errorf("%d notifications without a valid signature", rc.unsigned)
	}
	for _, b := range rc.bodies {
		for _, bad := range []string{tok, tokNew, fakegraph.DefaultToken, "psid-", faultNotifySecret, key} {
			if bytes.Contains(b, []byte(bad)) {
				t.Errorf("notification %s holds %q", b, bad)
			}
		}
	}
}
