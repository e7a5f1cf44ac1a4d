package sender_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// A sender calling an expired Marketing API version gets code 2635 for
// every business: each pauses and parks its events, none is dead-lettered.
// Restarted with a supported GRAPH_API_VERSION, it ends those pauses at
// once (not after PAUSE_INTERVAL, an hour here) and sends every parked
// event exactly once.
func TestDeprecatedVersionPausesThenResumes(t *testing.T) {
	e := newEnvGraph(t, fakegraph.Options{Now: time.Now}, func(c *sender.Config) {
		c.GraphVersion = "v16.0" // expired on 2024-02-06
		c.PauseInterval = time.Hour
	}, nil)
	var ids []string
	for _, b := range []string{"pa", "pb"} {
		e.touch(attribution.Messenger, b, "psid-"+b)
		for i := range 5 {
			id := b + "-" + strconv.Itoa(i)
			ids = append(ids, id)
			e.publish("messenger", conv(id, "messenger", b, "psid-"+b), id)
		}
	}
	e.waitFor(20*time.Second, "both businesses paused and 10 events parked", func() bool {
		return e.metric("sender_businesses_paused", nil) == 2 && e.parked() == 10
	})
	if n := len(e.dlq()); n != 0 {
		t.Fatalf("%d dead letters for a deprecated version; want none", n)
	}
	if n := len(e.fake.Events()); n != 0 {
		t.Fatalf("%d events accepted on an expired version", n)
	}
	paused := e.logs.FilterMessageSnippet("business paused").All()
	if len(paused) != 2 {
		t.Fatalf("%d 'business paused' lines; want one per business", len(paused))
	}
	if fix, _ := paused[0].ContextMap()["fix"].(string); !strings.Contains(fix, "GRAPH_API_VERSION") {
		t.Errorf("pause log's fix = %q; want it to name GRAPH_API_VERSION", fix)
	}

	e.stop()
	e.cfg.GraphVersion = fakegraph.NewestVersion
	e.restart()
	e.settled(30 * time.Second)
	e.sentOnce(ids...)
	if n := len(e.dlq()); n != 0 {
		t.Errorf("%d dead letters after the version was fixed; want none", n)
	}
	if n := e.logs.FilterMessageSnippet("deprecated Graph API version ended").Len(); n != 2 {
		t.Errorf("%d pauses ended for the version change; want 2", n)
	}
}

// An expired version that Meta auto-upgrades is accepted with an
// X-Ad-Api-Version-Warning header: the events count as sent, every such
// answer is counted, and the warning is logged once (at most once an hour).
func TestVersionWarningLoggedOnce(t *testing.T) {
	e := newEnvGraph(t, fakegraph.Options{Now: time.Now, AutoUpgrade: true}, func(c *sender.Config) {
		c.GraphVersion = "v16.0"
	}, nil)
	e.touch(attribution.Instagram, "ig1", "igsid-1")
	var ids []string
	for i := range 3 { // three requests, one after the other
		id := "w-" + strconv.Itoa(i)
		ids = append(ids, id)
		e.publish("instagram", conv(id, "instagram", "ig1", "igsid-1"), id)
		e.waitSent(20*time.Second, id)
	}
	e.settled(10 * time.Second)
	e.sentOnce(ids...)
	// The fake warns on the dataset lookup too, which the metric (of
	// /events answers) does not count.
	if warned := e.fake.VersionWarnings(); warned < 3 {
		t.Fatalf("the fake warned %d times; want one per request, 3 at least", warned)
	}
	if got := e.metric("sender_graph_version_warnings_total", nil); got != 3 {
		t.Errorf("sender_graph_version_warnings_total = %v; want 3, one per request", got)
	}
	lines := e.logs.FilterMessageSnippet("newer Marketing API version").All()
	if len(lines) != 1 {
		t.Fatalf("%d version warning lines; want 1", len(lines))
	}
	if w, _ := lines[0].ContextMap()["meta_warning"].(string); !strings.Contains(w, "auto-upgraded") {
		t.Errorf("logged warning %q; want Meta's header text", w)
	}
}
