package autoevents

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// The registry's automatic_events flag turns a business on; AUTOMATIC_EVENTS
// turns every one on; a record this process cannot open (sealed secrets, no
// REGISTRY_KEY) counts as off and is told once.
func TestRegistrySwitch(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	keys, err := registry.ParseKeyring("k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	w := registry.NewStore(rdb, keys)
	ctx := t.Context()
	for _, b := range []registry.Business{
		{ID: "1001", Channel: registry.WhatsApp, DatasetID: "1", Enabled: true, AutomaticEvents: true},
		{ID: "1002", Channel: registry.WhatsApp, DatasetID: "1", Enabled: true},
		{ID: "1003", Channel: registry.WhatsApp, DatasetID: "1", Enabled: true, AutomaticEvents: true,
			AccessToken: registry.NewSecret("EAAsealedtoken00000000000001")},
	} {
		if _, err := w.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	told := map[string]int{}
	sw := &RegistrySwitch{Registry: registry.NewCache(registry.NewStore(rdb, nil), registry.CacheConfig{}),
		OnUnreadable: func(id string, err error) { told[id]++ }}
	for id, want := range map[string]bool{"1001": true, "1002": false, "1003": false, "1004": false, "not-an-id": false} {
		for range 2 {
			if on, err := sw.Enabled(ctx, id); err != nil || on != want {
				t.Errorf("Enabled(%s) = %v, %v; want %v", id, on, err, want)
			}
		}
	}
	if told["1003"] != 1 || len(told) != 1 {
		t.Errorf("OnUnreadable calls = %v; want 1003 once", told)
	}
	sw.Config.On = true
	if on, _ := sw.Enabled(ctx, "1002"); !on {
		t.Error("AUTOMATIC_EVENTS=on does not enable every business")
	}
}
