package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// replayIngest stands in for ingest's outside contract: it accepts a body
// only with a valid X-Hub-Signature-256 (and the On-Premises secret on
// /webhook/onprem), and can answer 503 to the first n signed requests.
type replayIngest struct {
	secret, onPremSecret string
	fail503              int

	mu       sync.Mutex
	accepted map[string]int // path → bodies
	rejected int
}

func (s *replayIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := webhook.Verify(body, r.Header.Get(webhook.SignatureHeader), [][]byte{[]byte(s.secret)}) == nil
	if r.URL.Path == "/webhook/onprem" && r.Header.Get("X-Onprem-Secret") != s.onPremSecret {
		ok = false
	}
	if !ok {
		s.rejected++
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if s.fail503 > 0 {
		s.fail503--
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	if s.accepted == nil {
		s.accepted = map[string]int{}
	}
	s.accepted[r.URL.Path]++
}

func (s *replayIngest) counts() (map[string]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int{}
	for k, v := range s.accepted {
		m[k] = v
	}
	return m, s.rejected
}

func startReplayIngest(t *testing.T, in *replayIngest) string {
	t.Helper()
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)
	return srv.URL + "/webhook"
}

// replayExit waits for p to end by itself and returns its exit status.
func replayExit(p *proc, d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		p.t.Fatalf("%s still running after %v:\n%s", p.name, d, p.Output())
		return -1
	}
}

func replayExample(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "examples", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReplayE2EExamples(t *testing.T) {
	in := &replayIngest{secret: "e2e-app-secret", onPremSecret: "e2e-onprem", fail503: 1}
	target := startReplayIngest(t, in)
	p := start(t, "replay", "", []string{"META_APP_SECRET=e2e-app-secret,older-secret", "ONPREM_SECRET=e2e-onprem"},
		"-target", target, "-backoff", "10ms", replayExample(t, "webhooks"), replayExample(t, "onprem"))

	if code := replayExit(p, time.Minute); code != 0 {
		t.Fatalf("exit = %d; want 0:\n%s", code, p.Output())
	}
	accepted, rejected := in.counts()
	if accepted["/webhook"] != 3 || accepted["/webhook/onprem"] != 1 || rejected != 0 {
		t.Errorf("ingest accepted %v, rejected %d; want 3 on /webhook, 1 on /webhook/onprem, none rejected", accepted, rejected)
	}
	out := p.Output()
	for _, want := range []string{"replay: 4 bodies in ", "4 ok, 0 failed", "status: 200=4", "retried: 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"e2e-app-secret", "older-secret", "e2e-onprem"} {
		if strings.Contains(out, secret) {
			t.Errorf("output shows a secret:\n%s", out)
		}
	}
}

func TestReplayE2EBadInput(t *testing.T) {
	in := &replayIngest{secret: "s"}
	bad := replayExample(t, "bad.jsonl")
	p := start(t, "replay", "", []string{"META_APP_SECRET=s"}, "-target", startReplayIngest(t, in), bad)

	if code := replayExit(p, time.Minute); code != 1 {
		t.Fatalf("exit = %d; want 1:\n%s", code, p.Output())
	}
	if accepted, _ := in.counts(); accepted["/webhook"] != 1 {
		t.Errorf("ingest accepted %v; want the one good line", accepted)
	}
	out := p.Output()
	for _, want := range []string{
		"replay: 4 bodies", "1 ok, 3 failed", "not sent (bad input): 3",
		bad + `:2: unknown shape (object "user")`, bad + ":3: not JSON", bad + ":4: not a webhook body",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Failures never quote the body.
	if strings.Contains(out, "6789012345678901") || strings.Contains(out, `"entry"`) {
		t.Errorf("output quotes a body:\n%s", out)
	}
}

func TestReplayE2EUsage(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want *regexp.Regexp
	}{
		{name: "no input", env: []string{"META_APP_SECRET=s"}, want: regexp.MustCompile(`nothing to replay`)},
		{name: "no secret", args: []string{replayExample(t, "webhooks")}, want: regexp.MustCompile(`META_APP_SECRET is not set`)},
		{name: "unknown flag", env: []string{"META_APP_SECRET=s"}, args: []string{"-secret", "x"}, want: regexp.MustCompile(`not defined: -secret`)},
		{name: "missing file", env: []string{"META_APP_SECRET=s"}, args: []string{"nope.json"}, want: regexp.MustCompile(`nope.json`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, "replay", "", tt.env, tt.args...)
			if code := replayExit(p, time.Minute); code != 2 || !tt.want.MatchString(p.Output()) {
				t.Errorf("exit = %d, output:\n%s\nwant exit 2 and output matching %q", code, p.Output(), tt.want)
			}
		})
	}
	p := start(t, "replay", "", nil, "--help")
	if code := replayExit(p, time.Minute); code != 0 || !strings.Contains(p.Output(), "-dry-run") {
		t.Errorf("--help: exit %d, output:\n%s", code, p.Output())
	}
}

func TestReplayE2EDryRun(t *testing.T) {
	in := &replayIngest{secret: "s"}
	p := start(t, "replay", "", []string{"ONPREM_WABA_ID=104222339999001"},
		"-dry-run", "-target", startReplayIngest(t, in), replayExample(t, "webhooks"), replayExample(t, "onprem"))

	if code := replayExit(p, time.Minute); code != 0 {
		t.Fatalf("exit = %d; want 0:\n%s", code, p.Output())
	}
	if accepted, rejected := in.counts(); len(accepted) != 0 || rejected != 0 {
		t.Errorf("dry run sent requests: %v accepted, %d rejected", accepted, rejected)
	}
	type touch struct {
		Channel       string `json:"channel"`
		BusinessID    string `json:"business_id"`
		PhoneNumberID string `json:"phone_number_id"`
		UserID        string `json:"user_id"`
	}
	var got []string
	keys := map[string]bool{}
	for _, line := range strings.Split(p.Output(), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var l struct {
			Source  string  `json:"source"`
			Path    string  `json:"path"`
			Touches []touch `json:"touches"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("dry-run line is not JSON: %v: %s", err, line)
		}
		for _, tc := range l.Touches {
			got = append(got, filepath.Base(l.Source)+" "+l.Path+" "+tc.Channel+"/"+tc.BusinessID+"/"+tc.UserID)
			keys[tc.Channel+"/"+tc.BusinessID+"/"+tc.UserID] = true
			if tc.PhoneNumberID != "" {
				keys[tc.Channel+"/"+tc.PhoneNumberID+"/"+tc.UserID] = true
			}
		}
	}
	want := []string{
		"instagram_ad_referral.json:1 /webhook instagram/17841405555555555/1234567890123456",
		"messenger_ad_referral.json:1 /webhook messenger/109876543210987/6789012345678901",
		"whatsapp_cloud_ctwa_referral.json:1 /webhook whatsapp/102290129340398/16315551234",
		"whatsapp_onprem_referral.json:1 /webhook/onprem whatsapp/104222339999001/16315551234",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("dry-run touches:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The example conversions join to these touches (a WhatsApp one by
	// phone_number_id) and leave event_time to default to publish time.
	for i, line := range lines(t, replayExample(t, "conversions.jsonl")) {
		var c map[string]any
		if err := json.Unmarshal(line, &c); err != nil {
			t.Fatalf("conversions.jsonl:%d: %v", i+1, err)
		}
		if _, ok := c["event_time"]; ok {
			t.Errorf("conversions.jsonl:%d has an event_time; it would expire", i+1)
		}
		key := fmt.Sprintf("%s/%s/%s", c["channel"], c["business_id"], c["user_id"])
		if !keys[key] {
			t.Errorf("conversions.jsonl:%d (%s) joins to no example touch", i+1, key)
		}
	}
	if !strings.Contains(p.Output(), "replay (dry run): 4 bodies: 4 ok, 0 failed") {
		t.Errorf("dry-run summary missing:\n%s", p.Output())
	}
}
