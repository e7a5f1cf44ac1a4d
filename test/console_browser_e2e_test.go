package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ctmpipe/ctmpipe/internal/browsertest"
	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

const (
	consoleAdminToken = "console-admin-token-8e21"
	consoleAppSecret  = "console-app-secret-41aa"
)

// TestConsoleBrowserE2E is issue 14's browser walk on the real all-in-one
// binary (real redis-server, the fake Graph API): a conversion Meta rejects
// (code 100) becomes a dead letter; in headless chromium the operator logs
// in, sees the overview, opens the business, finds the dead letter,
// redrives it once Meta accepts the event, and sees the event's trail turn
// sent (and Meta got it once). Any console error or uncaught exception in
// the page fails it; screenshots go to a temp dir (logged).
func TestConsoleBrowserE2E(t *testing.T) {
	binary(t, "all-in-one") // build first (and skip under -short)
	b := browsertest.Start(t)
	rd := redistest.Start(t)
	graph := fakegraph.New(t, fakegraph.Options{})
	dir := t.TempDir()
	w := startWalkthrough(t, dir, []string{
		"META_APP_SECRET=" + consoleAppSecret, "META_VERIFY_TOKEN=console-verify", "ADMIN_TOKEN=" + consoleAdminToken,
		"REDIS_URL=" + rd.URL(), "CAPI_ACCESS_TOKEN=" + fakegraph.DefaultToken, "GRAPH_API_BASE=" + graph.URL(),
		"INGEST_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "NATS_ADDR=127.0.0.1:0", "DATA_DIR=" + filepath.Join(dir, "data"),
		"RETRY_MIN=100ms", "RETRY_MAX=1s", "CONTEXT_RETRY_MIN=200ms", "CONTEXT_RETRY_MAX=1s",
	})

	c := faultConv{Channel: "whatsapp", Biz: faultBusiness{ID: "104200000000077", Phone: "106500000000077"},
		User: "16315550177", Clid: "ARAconsoleE2EClick_0123456789", EventID: "console-e2e-purchase-1", Name: "Purchase", n: 1}
	if code, body := consoleAPI(t, w.admin, "PUT", "/v1/businesses/"+c.Biz.ID,
		[]byte(`{"channel":"whatsapp","dataset_id":"900000000000077","phone_number_ids":["`+c.Biz.Phone+`"]}`)); code != http.StatusCreated {
		t.Fatalf("PUT business = %d %s", code, body)
	}
	graph.RejectEventID(c.EventID) // Meta: code 100, invalid parameter
	hook := faultWebhook([]faultConv{c}, time.Now())
	req, _ := http.NewRequest(http.MethodPost, w.ingest+"/webhook", bytes.NewReader(hook))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(hook, []byte(consoleAppSecret)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %v %v", resp, err)
	}
	resp.Body.Close()
	walkPublish(t, walkJS(t, w.nats, filepath.Join(dir, "data")), c.conversion(time.Now()), "")

	trailPath := "/v1/events/" + c.Biz.ID + "/" + c.EventID
	var seq uint64
	waitFor(t, 2*time.Minute, "the rejected event dead-lettered", func() bool {
		code, body := consoleAPI(t, w.admin, "GET", trailPath, nil)
		var tr struct {
			State      string `json:"state"`
			DeadLetter *struct {
				Reason string `json:"reason"`
				Seq    uint64 `json:"seq"`
			} `json:"dead_letter"`
		}
		if code != http.StatusOK || json.Unmarshal([]byte(body), &tr) != nil || tr.State != "dead_letter" || tr.DeadLetter == nil {
			return false
		}
		if tr.DeadLetter.Reason != "rejected" {
			t.Fatalf("dead letter reason %q; want rejected: %s", tr.DeadLetter.Reason, body)
		}
		seq = tr.DeadLetter.Seq
		return true
	})
	graph.AllowEventID(c.EventID) // the operator fixed the event at the source

	console := w.admin + "/console/"
	b.Do("log in and see the overview",
		chromedp.Navigate(console),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleAdminToken),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitReady(chromedp.CSS("#live[data-updated]")),
		chromedp.WaitVisible(chromedp.CSS("#window-1h svg")),
	)
	b.Screenshot("e2e-overview")
	bizLink := fmt.Sprintf(`a.biz[href="/console/businesses/%s"]`, c.Biz.ID)
	row := fmt.Sprintf(`table.dead-letters input[name="seq"][value="%d"]`, seq)
	b.Do("open the business and find the dead letter",
		chromedp.Click(chromedp.CSS(`header nav a[href="/console/businesses"]`)),
		chromedp.WaitVisible(chromedp.CSS(bizLink)),
		chromedp.Click(chromedp.CSS(bizLink)),
		chromedp.WaitVisible(chromedp.CSS(row)),
	)
	if got := b.Text("table.dead-letters tbody"); !strings.Contains(got, c.EventID) || !strings.Contains(got, "rejected") {
		t.Errorf("the business's dead letters show %q; want %s, rejected", got, c.EventID)
	}
	b.Screenshot("e2e-business")
	b.Do("redrive it",
		chromedp.Click(chromedp.CSS(row)),
		chromedp.Click(chromedp.CSS("button.redrive-selected")),
		chromedp.WaitVisible(chromedp.ID("result")),
	)
	if got := b.Text("#result"); !strings.Contains(got, "Redriven 1 of 1") {
		t.Fatalf("redrive: %q", got)
	}
	eventPage := w.admin + "/console/events?" + url.Values{"business": {c.Biz.ID}, "event_id": {c.EventID}}.Encode()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b.Do("look the event up", chromedp.Navigate(eventPage), chromedp.WaitVisible(chromedp.ID("state")))
		if b.Text("#state") == "sent" {
			break
		}
		if time.Now().After(deadline) {
			b.Screenshot("e2e-event")
			t.Fatalf("the redriven event's trail is %q after 2m; want sent", b.Text("#state"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.Screenshot("e2e-event")
	if n := graph.CountByEventID()[c.EventID]; n != 1 {
		t.Errorf("Meta accepted the event %d times; want 1", n)
	}

	// Issue 26: the event's history, oldest first: received, dead letter
	// (rejected), redriven by this console session, sent.
	hist := b.Text("#history tbody")
	at := 0
	for _, want := range []string{"received", "dead_letter", "rejected", "redriven", "by console:", "sent", "request "} {
		i := strings.Index(hist[at:], want)
		if i < 0 {
			t.Fatalf("history %q: want %q after position %d (received, dead_letter rejected, redriven by console, sent)", hist, want, at)
		}
		at += i + len(want)
	}

	// Issue 26: the sent record links to its request in the business's
	// attempt log, which shows Meta's fbtrace_id, and the rejected request
	// before it with Meta's code.
	_, body := consoleAPI(t, w.admin, "GET", trailPath, nil)
	var sentTr struct {
		Sent struct {
			FBTraceID string `json:"fbtrace_id"`
			RequestID string `json:"request_id"`
		} `json:"sent"`
	}
	if err := json.Unmarshal([]byte(body), &sentTr); err != nil || sentTr.Sent.FBTraceID == "" || sentTr.Sent.RequestID == "" {
		t.Fatalf("sent trail without fbtrace_id or request_id: %s", body)
	}
	b.Do("follow the sent record to its request",
		chromedp.Click(chromedp.ID("request-link")),
		chromedp.WaitVisible(chromedp.ID("attempts")),
	)
	b.Screenshot("e2e-attempts")
	if got := b.Text("#req-" + sentTr.Sent.RequestID); !strings.Contains(got, sentTr.Sent.FBTraceID) || !strings.Contains(got, "200") {
		t.Errorf("the request's row shows %q; want fbtrace_id %s and 200", got, sentTr.Sent.FBTraceID)
	}
	if got := b.Text("#attempts tbody"); !strings.Contains(got, "code 100") {
		t.Errorf("the attempt log shows %q; want the rejected request with code 100", got)
	}

	// The audit log: the registry write by the admin token, the redrive by
	// this console session; no secret.
	b.Do("open the audit log",
		chromedp.Click(chromedp.ID("nav-audit")),
		chromedp.WaitVisible(chromedp.ID("audit")),
	)
	b.Screenshot("e2e-audit")
	got := b.Text("#audit tbody")
	for _, want := range []string{"dead_letters.redrive", "console:", "business.put", "admin_token", "dataset_id: 900000000000077"} {
		if !strings.Contains(got, want) {
			t.Errorf("the audit log shows %q; want %q in it", got, want)
		}
	}
	if strings.Contains(got, consoleAdminToken) || strings.Contains(got, fakegraph.DefaultToken) {
		t.Errorf("the audit log shows a secret: %q", got)
	}
	b.CheckClean()
}

// consoleAPI calls the admin API with the bearer token.
func consoleAPI(t *testing.T, base, method, path string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+consoleAdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
