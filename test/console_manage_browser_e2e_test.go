package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ctmpipe/ctmpipe/internal/browsertest"
	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
)

// Issue 26, the console's business management in chromium against the real
// all-in-one: the business is registered with the console's form;
// disabling a business stops its sends (its conversion is
// parked, listed on its page, Meta never gets it) until it is enabled; a
// business paused by
// Meta's 190 is resumed from the console and its parked conversions are
// sent once each. PAUSE_INTERVAL is 10m: only the resume can explain a
// send within the test.
func TestConsoleManageBrowserE2E(t *testing.T) {
	binary(t, "all-in-one")
	b := browsertest.Start(t)
	rd := redistest.Start(t)
	const (
		biz = "1094000000000004"
		tok = "EAAe2eManageTokenOfBusiness0001"
	)
	graph := fakegraph.New(t, fakegraph.Options{Tokens: []string{fakegraph.DefaultToken, tok}})
	dir := t.TempDir()
	w := startWalkthrough(t, dir, []string{
		"META_APP_SECRET=" + consoleAppSecret, "META_VERIFY_TOKEN=console-verify", "ADMIN_TOKEN=" + consoleAdminToken,
		"REDIS_URL=" + rd.URL(), "CAPI_ACCESS_TOKEN=" + fakegraph.DefaultToken, "GRAPH_API_BASE=" + graph.URL(),
		"INGEST_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "NATS_ADDR=127.0.0.1:0", "DATA_DIR=" + filepath.Join(dir, "data"),
		"RETRY_MIN=100ms", "RETRY_MAX=1s", "PAUSE_INTERVAL=10m", "REQUIRE_REFERRAL=none",
	})
	js := walkJS(t, w.nats, filepath.Join(dir, "data"))
	n := 0
	publish := func() string {
		n++
		id := fmt.Sprintf("manage-e2e-%d", n)
		walkPublish(t, js, fmt.Appendf(nil, `{"event_id":%q,"event_name":"Purchase","event_time":%d,"channel":"messenger","business_id":%q,"user_id":"psid-manage-%d","custom_data":{"currency":"USD","value":10}}`,
			id, time.Now().Unix(), biz, n), "")
		return id
	}
	state := func(id string) string {
		_, body := consoleAPI(t, w.admin, "GET", "/v1/events/"+biz+"/"+id, nil)
		var tr struct{ State string }
		_ = json.Unmarshal([]byte(body), &tr)
		return tr.State
	}
	bizPage := w.admin + "/console/businesses/" + biz
	b.Do("log in",
		chromedp.Navigate(w.admin+"/console/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleAdminToken),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitReady(chromedp.CSS("#live[data-updated]")),
	)
	b.Do("register the business",
		chromedp.Click(chromedp.CSS(`header nav a[href="/console/businesses"]`)),
		chromedp.WaitVisible(chromedp.ID("create")),
		chromedp.SendKeys(chromedp.ID("new-id"), biz),
		chromedp.SetValue(chromedp.ID("new-channel"), "messenger"),
		chromedp.SendKeys(chromedp.ID("new-dataset"), "900000000000094"),
		chromedp.SendKeys(chromedp.ID("new-token"), tok),
		chromedp.Click(chromedp.ID("register")),
		chromedp.WaitVisible(chromedp.ID("result")),
	)
	if code, body := consoleAPI(t, w.admin, "GET", "/v1/businesses/"+biz, nil); code != http.StatusOK ||
		!strings.Contains(body, `"access_token_set":true`) || !strings.Contains(body, `"channel":"messenger"`) || strings.Contains(body, tok) {
		t.Fatalf("the registered business = %d %s; want messenger with its token set (and not shown)", code, body)
	}

	// 1. Disable: the conversion is parked, not sent; the page says disabled.
	b.Do("disable the business",
		chromedp.Navigate(bizPage), chromedp.WaitVisible(chromedp.ID("disable")),
		chromedp.Click(chromedp.ID("disable")), chromedp.WaitVisible(chromedp.ID("result")),
	)
	// The sender reads the registry within a few seconds: wait until the
	// first conversion published after the disable is parked.
	var held string
	waitFor(t, 60*time.Second, "a conversion of the disabled business parked", func() bool {
		if held != "" && state(held) == "parked" {
			return true
		}
		if held == "" || state(held) == "sent" {
			held = publish() // the registry change had not reached the sender yet
		}
		return false
	})
	if c := graph.CountByEventID()[held]; c != 0 {
		t.Fatalf("Meta got %s %d times while the business was disabled", held, c)
	}
	b.Do("see it disabled", chromedp.Navigate(bizPage), chromedp.WaitVisible(chromedp.ID("biz-state")))
	if got := b.Text("#biz-state"); !strings.Contains(got, "disabled") || strings.Contains(got, "paused") {
		t.Errorf("state shows %q; want disabled, not paused", got)
	}
	if got := b.Text("#parked tbody"); !strings.Contains(got, held) {
		t.Errorf("parked conversions show %q; want %s", got, held)
	}
	b.Screenshot("manage-disabled")
	b.Do("enable it", chromedp.Click(chromedp.ID("enable")), chromedp.WaitVisible(chromedp.ID("result")))
	waitFor(t, 60*time.Second, "the held conversion sent after enabling", func() bool { return graph.CountByEventID()[held] == 1 })

	// 2. Meta refuses the token (190): the business pauses and parks; the
	// token works again; resume from the console sends the parked ones
	// once each.
	graph.RevokeToken(tok)
	var parked []string
	waitFor(t, 60*time.Second, "the business paused with a conversion parked", func() bool {
		if len(parked) > 0 {
			switch state(parked[len(parked)-1]) {
			case "parked":
				return true
			case "sent": // before the revoke reached a request: one more
			default:
				return false // not settled yet
			}
		}
		parked = append(parked, publish())
		return false
	})
	graph.SetTokens(fakegraph.DefaultToken, tok)
	b.Do("see it paused", chromedp.Navigate(bizPage), chromedp.WaitVisible(chromedp.ID("resume")))
	if got := b.Text("#biz-state"); !strings.Contains(got, "paused") {
		t.Errorf("state shows %q; want paused", got)
	}
	if got := b.Text("#parked tbody"); !strings.Contains(got, parked[len(parked)-1]) {
		t.Errorf("parked conversions show %q; want %s", got, parked[len(parked)-1])
	}
	b.Screenshot("manage-paused")
	b.Do("resume it", chromedp.Click(chromedp.ID("resume")), chromedp.WaitVisible(chromedp.ID("result")))
	waitFor(t, 60*time.Second, "the parked conversions sent after the resume", func() bool {
		c := graph.CountByEventID()
		for _, id := range parked {
			if c[id] == 0 {
				return false
			}
		}
		return true
	})
	for id, c := range graph.CountByEventID() {
		if strings.HasPrefix(id, "manage-e2e-") && c != 1 {
			t.Errorf("Meta got %s %d times; want once", id, c)
		}
	}
	b.CheckClean()
}
