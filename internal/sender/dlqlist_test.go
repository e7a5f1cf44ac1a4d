package sender_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ctmpipe/ctmpipe/internal/opsapi"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/internal/trail"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

func post(t testing.TB, srv *httptest.Server, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Dead letters listed by filter (library and admin API), shown with
// personal ids masked unless revealed, and redriven by business and by
// sequence, with a dry run that changes nothing.
func TestDeadLettersListShowRedrive(t *testing.T) {
	e := newEnv(t, func(c *sender.Config) { c.ContextWait = 300 * time.Millisecond })
	srv := e.adminAPI()
	// Four unattributed (p1 ×3, p2 ×1), then one invalid of p1.
	for i, b := range []string{"p1", "p1", "p1", "p2"} {
		id := "dl-" + strconv.Itoa(i)
		e.publish("messenger", conv(id, "messenger", b, "psid-secret-"+strconv.Itoa(i)), id)
	}
	e.waitDLQ(20*time.Second, 4)
	e.publish("messenger", []byte(`{"event_id":"dl-bad","event_name":"NoSuchEvent","channel":"messenger","business_id":"p1","user_id":"psid-secret-9"}`), "dl-bad")
	e.waitDLQ(20*time.Second, 5)
	e.settled(10 * time.Second)

	all, more, err := sender.ListDeadLetters(t.Context(), e.js, sender.DeadLetterFilter{}, 50)
	if err != nil || len(all) != 5 || more {
		t.Fatalf("ListDeadLetters() = %d, %v, %v; want 5, no more", len(all), more, err)
	}
	if all[0].EventID != "dl-bad" || all[0].Reason != sender.ReasonInvalid || all[0].Seq <= all[1].Seq {
		t.Errorf("first listed = %+v; want the newest (dl-bad, invalid)", all[0])
	}
	un, _, _ := sender.ListDeadLetters(t.Context(), e.js, sender.DeadLetterFilter{Reason: sender.ReasonUnattributed}, 50)
	p2, _, _ := sender.ListDeadLetters(t.Context(), e.js, sender.DeadLetterFilter{Business: "p2"}, 50)
	later, _, _ := sender.ListDeadLetters(t.Context(), e.js, sender.DeadLetterFilter{Since: time.Now().Add(time.Minute)}, 50)
	if len(un) != 4 || len(p2) != 1 || p2[0].EventID != "dl-3" || len(later) != 0 {
		t.Errorf("by reason %d, by business %+v, since the future %d; want 4, dl-3, 0", len(un), p2, len(later))
	}
	page, more, _ := sender.ListDeadLetters(t.Context(), e.js, sender.DeadLetterFilter{}, 2)
	rest, more2, _ := sender.ListDeadLetters(t.Context(), e.js, sender.DeadLetterFilter{Before: page[1].Seq}, 50)
	if len(page) != 2 || !more || len(rest) != 3 || more2 || rest[0].Seq >= page[1].Seq {
		t.Errorf("pages: %d (more %v) then %d (more %v); want 2, true, 3, false", len(page), more, len(rest), more2)
	}

	// The admin API: the same list, pages by cursor, no personal id.
	code, body := get(t, srv, "/v1/dead-letters?reason=unattributed&limit=3", adminToken)
	var list struct {
		DeadLetters []map[string]any `json:"dead_letters"`
		NextCursor  string           `json:"next_cursor"`
	}
	if err := json.Unmarshal(body, &list); code != 200 || err != nil || len(list.DeadLetters) != 3 || list.NextCursor == "" {
		t.Fatalf("GET /v1/dead-letters = %d %s; want 3 and a cursor", code, body)
	}
	if strings.Contains(string(body), "psid-secret") || list.DeadLetters[0]["reason"] != "unattributed" || list.DeadLetters[0]["time"] == "" ||
		list.DeadLetters[0]["seq"].(float64) != float64(un[0].Seq) {
		t.Errorf("list = %s; want the newest unattributed first, with time, and no personal id", body)
	}
	code, body = get(t, srv, "/v1/dead-letters?reason=unattributed&cursor="+list.NextCursor, adminToken)
	if code != 200 || strings.Count(string(body), `"seq"`) != 1 || strings.Contains(string(body), "next_cursor") {
		t.Errorf("second page = %d %s; want the last one, no cursor", code, body)
	}
	for _, q := range []string{"reason=nope", "limit=0", "since=yesterday", "cursor=x"} {
		if code, _ := get(t, srv, "/v1/dead-letters?"+q, adminToken); code != http.StatusBadRequest {
			t.Errorf("GET /v1/dead-letters?%s = %d; want 400", q, code)
		}
	}
	if code, _ := get(t, srv, "/v1/dead-letters", ""); code != http.StatusUnauthorized {
		t.Errorf("without token: %d; want 401", code)
	}

	// One letter: masked, and revealed on request.
	seq := strconv.FormatUint(p2[0].Seq, 10)
	code, body = get(t, srv, "/v1/dead-letters/"+seq, adminToken)
	if code != 200 || strings.Contains(string(body), "psid-secret-3") || !strings.Contains(string(body), `"user_id":"…et-3"`) ||
		!strings.Contains(string(body), `"error":"no ad referral`) {
		t.Errorf("GET /v1/dead-letters/%s = %d %s; want the message with user_id masked and the error", seq, code, body)
	}
	if _, body = get(t, srv, "/v1/dead-letters/"+seq+"?reveal=1", adminToken); !strings.Contains(string(body), "psid-secret-3") {
		t.Errorf("revealed = %s; want the user_id", body)
	}
	if code, _ = get(t, srv, "/v1/dead-letters/999999", adminToken); code != http.StatusNotFound {
		t.Errorf("unknown seq: %d; want 404", code)
	}

	// Redrive: a dry run by business counts and changes nothing; then one
	// by sequence sends just that one once its context is there.
	code, body = post(t, srv, "/v1/dead-letters/redrive", `{"business":"p2","dry_run":true}`)
	if code != 200 || string(bytes.TrimSpace(body)) != `{"dry_run":true,"matched":1,"redriven":0}` || len(e.dlq()) != 5 {
		t.Fatalf("dry run = %d %s; want matched 1, nothing redriven", code, body)
	}
	if code, _ = post(t, srv, "/v1/dead-letters/redrive", `{"dry_run":true}`); code != http.StatusBadRequest {
		t.Errorf("redrive without selector: %d; want 400", code)
	}
	e.touch(attribution.Messenger, "p2", "psid-secret-3")
	e.touch(attribution.Messenger, "p1", "psid-secret-0")
	code, body = post(t, srv, "/v1/dead-letters/redrive", `{"seqs":[`+seq+`]}`)
	if code != 200 || !strings.Contains(string(body), `"redriven":1`) {
		t.Fatalf("redrive by seq = %d %s; want 1 redriven", code, body)
	}
	e.waitTrail(srv, "p2", "dl-3", trail.Sent)
	// By business, reason and sequence through the library: dl-0 only.
	var dl0 uint64
	for _, l := range all {
		if l.EventID == "dl-0" {
			dl0 = l.Seq
		}
	}
	res, err := sender.Redrive(t.Context(), e.js, sender.RedriveOptions{Business: "p1", Reasons: []string{sender.ReasonUnattributed}, Seqs: []uint64{dl0}})
	if err != nil || res.Matched != 1 || res.Republished != 1 {
		t.Fatalf("Redrive(p1, one seq) = %+v, %v; want 1", res, err)
	}
	e.waitTrail(srv, "p1", "dl-0", trail.Sent)
	if n := len(e.dlq()); n != 3 {
		t.Errorf("%d dead letters left; want 3", n)
	}
	e.sentOnce("dl-3", "dl-0")

	// The sender's counters: outcomes in /v1/stats, p2's health.
	e.waitFor(10*time.Second, "counters", func() bool {
		_, body := get(t, srv, "/v1/stats?window=1h", adminToken)
		var st trail.Stats
		_ = json.Unmarshal(body, &st)
		return st.Outcomes["sent"] == 2 && st.Outcomes["dead_letter:unattributed"] == 4 && st.Outcomes["dead_letter:invalid"] == 1 &&
			st.Outcomes["waiting_context"] > 0 && st.GraphLatencyMS["p99"] > 0
	})
	h, err := opsapi.Health{Redis: e.rdb}.Health(t.Context(), "p2", nil)
	if err != nil || h.Sent24h != 1 || h.DeadLettered24h["unattributed"] != 1 || h.Conversions24h != 1 || h.LastAccepted == nil || h.Paused != nil {
		t.Errorf("p2 health = %+v, %v; want 1 sent, 1 unattributed, 1 conversion (a redrive is not another), accepted, not paused", h, err)
	}
}

// A page of recent dead letters reads a window at the end of DLQ, not the
// whole stream; a selection that matches only its oldest letter reads back
// to it; pages follow each other without a gap.
func TestDeadLettersListReadsBackwards(t *testing.T) {
	e := newEnv(t, nil)
	e.stop() // the streams exist; nothing consumes
	const n = 1500
	for i := range n {
		business := "busy"
		if i == 0 {
			business = "rare"
		}
		m := nats.NewMsg("dlq." + sender.ReasonRejected)
		m.Header.Set(sender.HeaderReason, sender.ReasonRejected)
		m.Header.Set(sender.HeaderError, "Meta 100: invalid parameter")
		m.Header.Set(sender.HeaderEventID, "old-"+strconv.Itoa(i))
		m.Data = []byte(`{"event_id":"old-` + strconv.Itoa(i) + `","business_id":"` + business + `","channel":"messenger"}`)
		if _, err := e.js.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishing the dead letters did not complete")
	}

	before := sender.ListRead()
	page, more, err := sender.ListDeadLetters(t.Context(), e.js, sender.DeadLetterFilter{}, 5)
	if err != nil || len(page) != 5 || !more {
		t.Fatalf("newest 5: %d, more %v, %v", len(page), more, err)
	}
	if read := sender.ListRead() - before; read > 256 {
		t.Errorf("the newest 5 of %d read %d messages; want one window (256) at most", n, read)
	}
	for i, l := range page {
		if want := "old-" + strconv.Itoa(n-1-i); l.EventID != want {
			t.Fatalf("page[%d] = %s; want %s (newest first)", i, l.EventID, want)
		}
	}
	next, _, err := sender.ListDeadLetters(t.Context(), e.js, sender.DeadLetterFilter{Before: page[4].Seq}, 5)
	if err != nil || len(next) != 5 || next[0].Seq != page[4].Seq-1 {
		t.Fatalf("next page starts at %v (%v); want seq %d", next, err, page[4].Seq-1)
	}

	rare, more, err := sender.ListDeadLetters(t.Context(), e.js, sender.DeadLetterFilter{Business: "rare"}, 5)
	if err != nil || len(rare) != 1 || rare[0].EventID != "old-0" || more {
		t.Fatalf("the one letter of business rare: %v, more %v, %v", rare, more, err)
	}

	// With since, nothing older is read: the list starts at the first
	// letter since.
	dlq, err := e.js.Stream(t.Context(), sender.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dlq.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	lastOld := info.State.LastSeq
	for i := range 3 {
		m := nats.NewMsg("dlq." + sender.ReasonRejected)
		m.Header.Set(sender.HeaderReason, sender.ReasonRejected)
		m.Header.Set(sender.HeaderEventID, "new-"+strconv.Itoa(i))
		m.Data = []byte(`{"event_id":"new-` + strconv.Itoa(i) + `","business_id":"rare","channel":"messenger"}`)
		if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	// A moment between the last old letter and the first new one, by the
	// server's stored times.
	oldM, err := dlq.GetMsg(t.Context(), lastOld)
	if err != nil {
		t.Fatal(err)
	}
	newM, err := dlq.GetMsg(t.Context(), lastOld+1)
	if err != nil {
		t.Fatal(err)
	}
	if !newM.Time.After(oldM.Time) {
		t.Fatalf("letter %d stored at %v, not after %d at %v", lastOld+1, newM.Time, lastOld, oldM.Time)
	}
	since := oldM.Time.Add(newM.Time.Sub(oldM.Time) / 2)
	before = sender.ListRead()
	recent, more, err := sender.ListDeadLetters(t.Context(), e.js, sender.DeadLetterFilter{Business: "rare", Since: since}, 5)
	if err != nil || len(recent) != 3 || recent[0].EventID != "new-2" || more {
		t.Fatalf("rare's letters since: %v, more %v, %v; want new-2, new-1, new-0", recent, more, err)
	}
	if read := sender.ListRead() - before; read != 3 {
		t.Errorf("listing since read %d messages; want the 3 since", read)
	}
	if none, _, err := sender.ListDeadLetters(t.Context(), e.js, sender.DeadLetterFilter{Since: time.Now().Add(time.Hour)}, 5); err != nil || len(none) != 0 {
		t.Fatalf("since an hour ahead: %v, %v", none, err)
	}
}
