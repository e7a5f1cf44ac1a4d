package sender_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/attribution"
)

// WhatsApp users with a username may show no phone: ingest keys their click
// by the BSUID, and by every id it knows when there are several. The sender
// joins a conversion naming any of them to the click.
func TestBSUIDConversionsJoin(t *testing.T) {
	e := newEnv(t, nil)
	touch := func(user, clid string, aliases ...string) {
		t.Helper()
		err := e.store.Record(t.Context(), []attribution.Touch{{
			Key:     attribution.Key{Channel: attribution.WhatsApp, BusinessID: "w1", UserID: user},
			Aliases: aliases, ClickID: clid, AdID: "1", SourceType: "ad", Time: time.Now(),
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	touch("US.13491208655302741918", "clid-bsuid-only")
	touch("16315551234", "clid-both", "US.99887766554433221100")
	tests := []struct{ id, user, clid string }{
		{"bsuid-only", "US.13491208655302741918", "clid-bsuid-only"},
		{"both-by-phone", "16315551234", "clid-both"},
		{"both-by-bsuid", "US.99887766554433221100", "clid-both"},
	}
	var ids []string
	for _, tt := range tests {
		e.publish("whatsapp", conv(tt.id, "whatsapp", "w1", tt.user), tt.id)
		ids = append(ids, tt.id)
	}
	e.waitSent(20*time.Second, ids...)
	e.settled(10 * time.Second)
	e.sentOnce(ids...)
	for _, ev := range e.fake.Events() {
		for _, tt := range tests {
			if ev.EventID == tt.id && !strings.Contains(string(ev.Raw), `"ctwa_clid":"`+tt.clid+`"`) {
				t.Errorf("%s sent %s; want ctwa_clid %s", tt.id, ev.Raw, tt.clid)
			}
		}
	}
	if n := len(e.dlq()); n != 0 {
		t.Errorf("%d dead letters; want none", n)
	}
}
