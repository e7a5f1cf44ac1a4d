package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// faultIntakeToken is the rig's INTAKE_TOKEN (intake wants 16 characters).
const faultIntakeToken = "fault-intake-token-7f21"

// postIntake posts body to the admin listener's POST /v1/conversions.
func (r *faultRig) postIntake(t *testing.T, contentType string, body []byte, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.admin+"/v1/conversions", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/conversions: %v", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// HTTP intake end to end (issue 13): 1,000 conversions in one NDJSON POST
// to the real ingest binary's admin listener reach the fake Graph API
// exactly once through the real sender; the same body again is 1,000
// duplicates and sends nothing new. Messenger conversions need no click
// with REQUIRE_REFERRAL=none, so no webhook is needed first.
func TestIntakeE2E(t *testing.T) {
	r := newFaultRig(t, faultOptions{
		IngestEnv: []string{"INTAKE_TOKEN=" + faultIntakeToken},
		SenderEnv: []string{"REQUIRE_REFERRAL=none"},
	})
	const n = 1000
	var body bytes.Buffer
	now := time.Now().Unix()
	for i := range n {
		fmt.Fprintf(&body, `{"event_id":"%s-intake-%d","event_name":"Purchase","event_time":%d,"channel":"messenger","business_id":"109800000000001","user_id":"%d","custom_data":{"currency":"USD","value":%d}}`+"\n",
			r.run, i, now, 7100000000000+i, 10+i)
	}
	if code, _ := r.postIntake(t, "application/x-ndjson", body.Bytes(), ""); code != http.StatusUnauthorized {
		t.Fatalf("POST without a token = %d; want 401", code)
	}
	code, out := r.postIntake(t, "application/x-ndjson", body.Bytes(), faultIntakeToken)
	if code != http.StatusAccepted {
		t.Fatalf("POST = %d %s; want 202", code, out)
	}
	var res struct {
		Accepted   int `json:"accepted"`
		Duplicates int `json:"duplicates"`
		Invalid    []struct {
			Index int `json:"index"`
		} `json:"invalid"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.Accepted != n || res.Duplicates != 0 || len(res.Invalid) != 0 {
		t.Fatalf("POST answered %s (%v); want %d accepted", out, err, n)
	}
	waitFor(t, 120*time.Second, "every conversion at the fake Graph API", func() bool {
		return len(r.graph.Events()) >= n
	})

	// The same body again: duplicates, nothing new sent.
	code, out = r.postIntake(t, "application/x-ndjson", body.Bytes(), faultIntakeToken)
	if err := json.Unmarshal(out, &res); code != http.StatusAccepted || err != nil || res.Accepted != 0 || res.Duplicates != n {
		t.Fatalf("second POST = %d %s; want 202 with %d duplicates", code, out, n)
	}
	// The sender would have had time to send a second copy of the first
	// batch: wait until a marker published after the body is sent.
	marker := fmt.Sprintf(`{"event_id":"%s-marker","event_name":"Purchase","event_time":%d,"channel":"messenger","business_id":"109800000000001","user_id":"7199999999999","custom_data":{"currency":"USD","value":1}}`, r.run, now)
	if code, out := r.postIntake(t, "application/json", []byte(marker), faultIntakeToken); code != http.StatusAccepted {
		t.Fatalf("marker POST = %d %s", code, out)
	}
	waitFor(t, 60*time.Second, "the marker at the fake Graph API", func() bool {
		for _, ev := range r.graph.Events() {
			if ev.EventID == r.run+"-marker" {
				return true
			}
		}
		return false
	})
	seen := map[string]int{}
	for _, ev := range r.graph.Events() {
		seen[ev.EventID]++
	}
	for i := range n {
		if c := seen[fmt.Sprintf("%s-intake-%d", r.run, i)]; c != 1 {
			t.Errorf("conversion %d sent %d times; want once", i, c)
		}
	}
	if len(seen) != n+1 {
		t.Errorf("%d distinct events at the fake; want %d", len(seen), n+1)
	}

	// 3 bad items of 10: 202, naming the 3 by index with a reason.
	body.Reset()
	for i := range 10 {
		name, ch := "Purchase", "messenger"
		switch i {
		case 2:
			name = ""
		case 5:
			ch = "telegram"
		}
		ts := now
		if i == 8 {
			ts = 0
		}
		fmt.Fprintf(&body, `{"event_id":"%s-mixed-%d","event_name":%q,"event_time":%d,"channel":%q,"business_id":"109800000000001","user_id":"7200000000000","custom_data":{"currency":"USD","value":1}}`+"\n", r.run, i, name, ts, ch)
	}
	code, out = r.postIntake(t, "application/x-ndjson", body.Bytes(), faultIntakeToken)
	res.Invalid = nil
	if err := json.Unmarshal(out, &res); code != http.StatusAccepted || err != nil || res.Accepted != 7 || len(res.Invalid) != 3 {
		t.Fatalf("mixed POST = %d %s; want 202 with 7 accepted and 3 invalid", code, out)
	}
	for i, want := range []int{2, 5, 8} {
		if res.Invalid[i].Index != want {
			t.Errorf("invalid[%d].index = %d; want %d (%s)", i, res.Invalid[i].Index, want, out)
		}
	}
	if !bytes.Contains(out, []byte(`"reason"`)) {
		t.Errorf("invalid items carry no reason: %s", out)
	}

	// NATS away: 503, nothing claimed as accepted. Then NATS back: the
	// client's retry of the same body is answered 202, every item counted
	// once as accepted or as a duplicate of what an earlier attempt got in,
	// and each conversion reaches the fake Graph API exactly once.
	const m = 20
	body.Reset()
	for i := range m {
		fmt.Fprintf(&body, `{"event_id":"%s-retry-%d","event_name":"Purchase","event_time":%d,"channel":"messenger","business_id":"109800000000001","user_id":"%d","custom_data":{"currency":"USD","value":1}}`+"\n",
			r.run, i, now, 7300000000000+i)
	}
	r.nats.Shutdown()
	if code, out := r.postIntake(t, "application/x-ndjson", body.Bytes(), faultIntakeToken); code != http.StatusServiceUnavailable {
		t.Fatalf("POST with NATS away = %d %s; want 503", code, out)
	}
	r.nats.Restart()
	waitFor(t, 60*time.Second, "the retried POST accepted once NATS is back", func() bool {
		code, out = r.postIntake(t, "application/x-ndjson", body.Bytes(), faultIntakeToken)
		if code != http.StatusAccepted {
			return false
		}
		res.Invalid = nil
		if err := json.Unmarshal(out, &res); err != nil || res.Accepted+res.Duplicates != m || len(res.Invalid) != 0 {
			t.Fatalf("retried POST = %d %s (%v); want %d accepted or duplicates", code, out, err, m)
		}
		return true
	})
	retried := func() int {
		n := 0
		for _, ev := range r.graph.Events() {
			if strings.HasPrefix(ev.EventID, r.run+"-retry-") {
				n++
			}
		}
		return n
	}
	waitFor(t, 120*time.Second, "every retried conversion at the fake Graph API", func() bool { return retried() >= m })
	// One more marker after them, so a second copy would have had its time.
	marker2 := strings.Replace(marker, r.run+"-marker", r.run+"-marker2", 1)
	if code, out := r.postIntake(t, "application/json", []byte(marker2), faultIntakeToken); code != http.StatusAccepted {
		t.Fatalf("second marker POST = %d %s", code, out)
	}
	waitFor(t, 60*time.Second, "the second marker at the fake Graph API", func() bool {
		for _, ev := range r.graph.Events() {
			if ev.EventID == r.run+"-marker2" {
				return true
			}
		}
		return false
	})
	if got := retried(); got != m {
		t.Errorf("%d retried conversions at the fake Graph API; want %d, each once", got, m)
	}
}
