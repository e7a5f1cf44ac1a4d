package replay

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// captureStream starts JetStream with an empty WEBHOOKS stream shaped like
// the one ingest writes.
func captureStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	ns := natstest.RunJetStream(t)
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: CaptureStream, Subjects: []string{CaptureSubjects}, Storage: jetstream.FileStorage,
	})
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// capture publishes body as ingest's capture does. Empty header values are
// left out.
func capture(t *testing.T, js jetstream.JetStream, channel, path, receivedAt, body string) {
	t.Helper()
	if err := publishCapture(t.Context(), js, channel, path, receivedAt, body); err != nil {
		t.Fatal(err)
	}
}

func publishCapture(ctx context.Context, js jetstream.JetStream, channel, path, receivedAt, body string) error {
	m := nats.NewMsg("webhooks." + channel)
	m.Data = []byte(body)
	for k, v := range map[string]string{HeaderReceivedAt: receivedAt, HeaderChannel: channel, HeaderPath: path} {
		if v != "" {
			m.Header.Set(k, v)
		}
	}
	_, err := js.PublishMsg(ctx, m)
	return err
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestCaptureTimeRange(t *testing.T) {
	js := captureStream(t)
	ms := compact(t, "messenger_message_with_ad_referral.json")
	onprem := compact(t, "whatsapp_onprem_text_with_referral.json")
	ig := compact(t, "instagram_message_with_ad_referral.json")
	wa := compact(t, "whatsapp_cloud_text_with_ctwa_referral.json")
	capture(t, js, "messenger", PathCloud, "2026-11-24T10:00:00.5Z", ms)             // 1
	capture(t, js, "whatsapp", PathOnPrem, "2026-11-24T10:05:00.000000001Z", onprem) // 2
	capture(t, js, "instagram", PathCloud, "2026-11-24T10:10:00Z", ig)               // 3
	capture(t, js, "whatsapp", PathCloud, "2026-11-24T10:30:00Z", wa)                // 4

	tests := []struct {
		name        string
		from, until string
		want        []request
	}{
		{name: "from and until", from: "2026-11-24T10:05:00.000000001Z", until: "2026-11-24T10:20:00Z", want: []request{
			{Path: PathOnPrem, Body: onprem, OnPrem: testOnPremSecret}, {Path: PathCloud, Body: ig}}},
		{name: "until is exclusive", from: "2026-11-24T09:00:00Z", until: "2026-11-24T10:10:00Z", want: []request{
			{Path: PathCloud, Body: ms}, {Path: PathOnPrem, Body: onprem, OnPrem: testOnPremSecret}}},
		{name: "to the end", from: "2026-11-24T10:10:00Z", want: []request{
			{Path: PathCloud, Body: ig}, {Path: PathCloud, Body: wa}}},
		{name: "nothing in range", from: "2026-11-24T10:31:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeIngest{}
			cfg := testConfig(startIngest(t, f))
			cfg.Concurrency = 1
			c := &Capture{JS: js, From: mustTime(t, tt.from)}
			if tt.until != "" {
				c.Until = mustTime(t, tt.until)
			}
			sum := mustRun(t, cfg, c)
			if diff := cmp.Diff(tt.want, f.requests(), cmpIgnoreAt); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if sum.Bodies != len(tt.want) || sum.Failed != 0 {
				t.Errorf("summary: %d bodies, %d failed; want %d, 0", sum.Bodies, sum.Failed, len(tt.want))
			}
		})
	}
}

func TestCaptureWithoutHeaderUsesStoredTime(t *testing.T) {
	js := captureStream(t)
	ms := compact(t, "messenger_message_with_ad_referral.json")
	ig := compact(t, "instagram_message_with_ad_referral.json")
	capture(t, js, "messenger", "", "", ms)
	from := time.Now()
	capture(t, js, "instagram", "", "", ig)
	f := &fakeIngest{}

	mustRun(t, testConfig(startIngest(t, f)), &Capture{JS: js, From: from})

	if diff := cmp.Diff([]string{ig}, f.bodies()); diff != "" {
		t.Errorf("bodies (-want +got):\n%s", diff)
	}
	// A start after the last message: the consumer has nothing pending.
	f2 := &fakeIngest{}
	mustRun(t, testConfig(startIngest(t, f2)), &Capture{JS: js, From: time.Now().Add(time.Hour)})
	if n := len(f2.requests()); n != 0 {
		t.Errorf("replay from the future sent %d bodies", n)
	}
}

func TestCaptureBadHeadersAreReported(t *testing.T) {
	js := captureStream(t)
	ms := compact(t, "messenger_message_with_ad_referral.json")
	capture(t, js, "messenger", PathCloud, "yesterday", ms)
	capture(t, js, "messenger", "/elsewhere", "2026-11-24T10:00:00Z", ms)
	capture(t, js, "messenger", PathCloud, "2026-11-24T10:00:00Z", "{not json")
	capture(t, js, "messenger", PathCloud, "2026-11-24T10:00:01Z", ms)
	f := &fakeIngest{}
	cfg := testConfig(startIngest(t, f))
	cfg.Concurrency = 1

	sum := mustRun(t, cfg, &Capture{JS: js, From: mustTime(t, "2026-11-24T00:00:00Z")})

	want := []string{
		"WEBHOOKS:1: capture header Ctm-Received-At is not RFC 3339",
		"WEBHOOKS:2: capture header Ctm-Path is neither /webhook nor /webhook/onprem",
		"WEBHOOKS:3: not JSON",
	}
	if diff := cmp.Diff(want, failureStrings(sum)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{ms}, f.bodies()); diff != "" {
		t.Errorf("bodies (-want +got):\n%s", diff)
	}
}

// TestCaptureEndsWhenIngestCapturesTheReplay: an ingest with capture on
// writes every replayed body to the stream again; the replay must stop at
// the end the stream had when it started.
func TestCaptureEndsWhenIngestCapturesTheReplay(t *testing.T) {
	js := captureStream(t)
	ms := compact(t, "messenger_message_with_ad_referral.json")
	for range 5 {
		capture(t, js, "messenger", PathCloud, time.Now().UTC().Format(time.RFC3339Nano), ms)
	}
	f := &fakeIngest{respond: func(_ int, body string) int {
		if err := publishCapture(t.Context(), js, "messenger", PathCloud, time.Now().UTC().Format(time.RFC3339Nano), body); err != nil {
			t.Errorf("capture the replayed body: %v", err)
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	sum, err := Run(ctx, testConfig(startIngest(t, f)), []Source{&Capture{JS: js, From: time.Now().Add(-time.Hour)}})

	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sum.OK != 5 || len(f.requests()) != 5 {
		t.Errorf("ok = %d, requests = %d; want the 5 captured before the replay", sum.OK, len(f.requests()))
	}
}

func TestCaptureStreamErrors(t *testing.T) {
	ns := natstest.RunJetStream(t)
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(startIngest(t, &fakeIngest{}))
	_, err = Run(t.Context(), cfg, []Source{&Capture{JS: js, From: time.Now().Add(-time.Hour)}})
	if err == nil || !strings.Contains(err.Error(), "stream WEBHOOKS") {
		t.Errorf("Run without the stream: err = %v; want it to name stream WEBHOOKS", err)
	}

	// An empty stream is an empty replay, not an error.
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: CaptureStream, Subjects: []string{CaptureSubjects}}); err != nil {
		t.Fatal(err)
	}
	sum := mustRun(t, cfg, &Capture{JS: js, From: time.Now().Add(-time.Hour)})
	if sum.Bodies != 0 {
		t.Errorf("empty stream: %d bodies", sum.Bodies)
	}
}
