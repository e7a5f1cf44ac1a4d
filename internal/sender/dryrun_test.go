package sender_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/sender"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// Without a token (all-in-one's dry run) the requests land in a JSONL file,
// one line per request, without the token, with dataset ids from the
// mapping or dryrun-<business_id>.
func TestDryRunWritesRequests(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "capi-dryrun.jsonl")
	dr, err := sender.NewDryRun(path, "ctmpipe-test", "TEST123")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dr.Close() })
	e := newEnvDeps(t, func(c *sender.Config) {
		c.AccessToken = ""
		c.Datasets = map[string]sender.DatasetConfig{"p2": {DatasetID: "mapped-ds"}}
	}, func(d *sender.Deps) { d.Poster = dr })
	e.touch(attribution.Messenger, "p1", "psid-1")
	e.touch(attribution.Messenger, "p2", "psid-2")
	e.publish("messenger", conv("dr-1", "messenger", "p1", "psid-1"), "dr-1")
	e.publish("messenger", conv("dr-2", "messenger", "p2", "psid-2"), "dr-2")
	e.settled(20 * time.Second)

	got := map[string]string{} // event id → dataset id
	for _, l := range readLines(t, path) {
		if strings.Contains(string(l), "access_token") {
			t.Errorf("dry-run line holds a token field: %s", l)
		}
		var req struct {
			DatasetID     string            `json:"dataset_id"`
			Data          []json.RawMessage `json:"data"`
			PartnerAgent  string            `json:"partner_agent"`
			TestEventCode string            `json:"test_event_code"`
		}
		if err := json.Unmarshal(l, &req); err != nil {
			t.Fatalf("line %s: %v", l, err)
		}
		if req.PartnerAgent != "ctmpipe-test" || req.TestEventCode != "TEST123" {
			t.Errorf("line lacks partner_agent or test_event_code: %s", l)
		}
		for _, raw := range req.Data {
			var ev struct {
				EventID string `json:"event_id"`
			}
			_ = json.Unmarshal(raw, &ev)
			got[ev.EventID] = req.DatasetID
		}
	}
	if got["dr-1"] != "dryrun-p1" || got["dr-2"] != "mapped-ds" || len(got) != 2 {
		t.Errorf("dry-run datasets = %v; want dr-1 → dryrun-p1, dr-2 → mapped-ds", got)
	}
	if n := len(e.fake.Events()); n != 0 {
		t.Errorf("%d events reached the Graph API in a dry run", n)
	}
}

// Businesses not in the mapping get their dataset from the Dataset API once;
// the id is cached in Redis (ds:{business}) for every sender after.
func TestDatasetAPIResolvedOnceAndCached(t *testing.T) {
	e := newEnv(t, nil)
	e.touch(attribution.Instagram, "ig9", "igsid-9")
	e.publish("instagram", conv("ds-1", "instagram", "ig9", "igsid-9"), "ds-1")
	e.publish("instagram", conv("ds-2", "instagram", "ig9", "igsid-9"), "ds-2")
	e.settled(20 * time.Second)
	e.restart() // memory cache gone; Redis has it
	e.publish("instagram", conv("ds-3", "instagram", "ig9", "igsid-9"), "ds-3")
	e.settled(20 * time.Second)
	e.sentOnce("ds-1", "ds-2", "ds-3")
	want, ok := e.fake.DatasetID("ig9")
	if !ok {
		t.Fatal("the fake has no dataset for ig9")
	}
	for _, ev := range e.fake.Events() {
		if ev.DatasetID != want {
			t.Errorf("%s went to %s; want %s", ev.EventID, ev.DatasetID, want)
		}
	}
	if cached := e.rdb.Get(t.Context(), "ds:{ig9}").Val(); cached != want {
		t.Errorf("ds:{ig9} = %q; want %q", cached, want)
	}
	if n := len(e.fake.DatasetCalls()); n != 1 { // one POST, cached
		t.Errorf("%d Dataset API calls; want the dataset resolved once", n)
	}
}
