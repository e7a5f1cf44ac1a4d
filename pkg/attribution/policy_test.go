package attribution

import (
	"fmt"
	"testing"
	"time"
)

// backend is a Store over miniredis (fast-forward moves its clock) or over a
// real redis-server (fast-forward is nil: tests that need it skip there).
type backend struct {
	name string
	s    *Store
	ff   func(time.Duration)
}

// backends returns the Store under test on miniredis and, where
// redis-server is installed (always under CI=true), on the real server,
// since the upsert and alias scripts are Lua that both must run alike.
func backends(t *testing.T, ttl time.Duration) []backend {
	t.Helper()
	mini, mr := newTestStore(t, ttl)
	out := []backend{{"miniredis", mini, mr.FastForward}}
	if !testing.Short() {
		real, _ := newRealStore(t, ttl)
		out = append(out, backend{"redis-server", real, nil})
	}
	return out
}

func firstTouch(tc Touch) Touch { tc.FirstTouch = true; return tc }

func pttl(t *testing.T, s *Store, k Key) time.Duration {
	t.Helper()
	ck, _ := contextKey(k)
	return s.rdb.PTTL(t.Context(), ck).Val()
}

func TestFirstTouchKeepsTheFirstClick(t *testing.T) {
	k := Key{WhatsApp, testWABA, testUser}
	early := waTouch(testUser, "ARAfirstClick", t0)
	late := waTouch(testUser, "ARAsecondClick", t0.Add(time.Hour))
	tests := []struct {
		name   string
		policy func(Touch) Touch
		order  []Touch
		want   string
	}{
		{"last touch in order", func(tc Touch) Touch { return tc }, []Touch{early, late}, "ARAsecondClick"},
		{"last touch out of order", func(tc Touch) Touch { return tc }, []Touch{late, early}, "ARAsecondClick"},
		{"first touch in order", firstTouch, []Touch{early, late}, "ARAfirstClick"},
		{"first touch out of order", firstTouch, []Touch{late, early}, "ARAfirstClick"},
	}
	for _, b := range backends(t, 0) {
		for i, tt := range tests {
			t.Run(b.name+"/"+tt.name, func(t *testing.T) {
				k := k
				k.UserID = fmt.Sprintf("1555%07d", i)
				for _, tc := range tt.order {
					tc = tt.policy(tc)
					tc.UserID = k.UserID
					record(t, b.s, tc)
				}
				got := mustGet(t, b.s, k)
				if got.ClickID != tt.want || !got.FirstSeen.Equal(t0) {
					t.Errorf("Get = click %q first seen %v; want %q, %v", got.ClickID, got.FirstSeen, tt.want, t0)
				}
				if ft := tt.name[:5] == "first"; got.FirstTouch != ft {
					t.Errorf("FirstTouch = %v; want %v", got.FirstTouch, ft)
				}
			})
		}
	}
}

// TestFirstTouchTTL: a first-touch context lives CONTEXT_TTL after its first
// click was recorded, later clicks do not extend it; a last-touch context
// lives CONTEXT_TTL after its latest.
func TestFirstTouchTTL(t *testing.T) {
	s, mr := newTestStore(t, 24*time.Hour)
	first, last := Key{WhatsApp, testWABA, "1555000001"}, Key{WhatsApp, testWABA, "1555000002"}
	record(t, s, firstTouch(waTouch(first.UserID, "ARAa", t0)), waTouch(last.UserID, "ARAa", t0))
	mr.FastForward(5 * time.Hour)
	record(t, s, firstTouch(waTouch(first.UserID, "ARAb", t0.Add(5*time.Hour))), waTouch(last.UserID, "ARAb", t0.Add(5*time.Hour)))
	if got := pttl(t, s, first); got != 19*time.Hour {
		t.Errorf("first touch: PTTL after a later click = %v; want 19h (not extended)", got)
	}
	if got := pttl(t, s, last); got != 24*time.Hour {
		t.Errorf("last touch: PTTL after a later click = %v; want 24h", got)
	}
	if got := mustGet(t, s, first); got.ClickID != "ARAa" {
		t.Errorf("first touch kept %q; want ARAa", got.ClickID)
	}
	mr.FastForward(19 * time.Hour)
	if _, err := s.Get(t.Context(), first); err != ErrNotFound {
		t.Errorf("first touch after 24h: Get = %v; want ErrNotFound", err)
	}
	// Then the next click starts the conversation again.
	record(t, s, firstTouch(waTouch(first.UserID, "ARAc", t0.Add(25*time.Hour))))
	if got := mustGet(t, s, first); got.ClickID != "ARAc" {
		t.Errorf("after expiry first touch holds %q; want ARAc", got.ClickID)
	}
}

// TestClickIDBeatsNone: a WhatsApp referral without ctwa_clid (an ad in
// WhatsApp Status) is stored flagged; a referral of the same conversation
// with a click id wins over it under both policies, whatever the order.
func TestClickIDBeatsNone(t *testing.T) {
	none := waTouch(testUser, "", t0)
	none.AdID = "120200000000000777"
	later := waTouch(testUser, "ARAwithClick", t0.Add(time.Hour))
	earlier := waTouch(testUser, "ARAwithClick", t0.Add(-time.Hour))
	laterNone := none
	laterNone.Time = t0.Add(2 * time.Hour)
	for _, b := range backends(t, 0) {
		for i, tt := range []struct {
			name  string
			order []Touch
		}{
			{"none then click, last touch", []Touch{none, later}},
			{"click then none, last touch", []Touch{later, laterNone}},
			{"none then click, first touch", []Touch{firstTouch(none), firstTouch(later)}},
			{"earlier click arrives after none, first touch", []Touch{firstTouch(none), firstTouch(earlier)}},
			{"click then later none, first touch", []Touch{firstTouch(later), firstTouch(laterNone)}},
		} {
			t.Run(b.name+"/"+tt.name, func(t *testing.T) {
				k := Key{WhatsApp, testWABA, fmt.Sprintf("1555123%04d", i)}
				for _, tc := range tt.order {
					tc.UserID = k.UserID
					record(t, b.s, tc)
				}
				got := mustGet(t, b.s, k)
				if got.ClickID != "ARAwithClick" || got.NoClickID {
					t.Errorf("Get = click %q, no_click_id %v; want ARAwithClick, false", got.ClickID, got.NoClickID)
				}
			})
		}
		t.Run(b.name+"/none alone is flagged", func(t *testing.T) {
			tc := none
			tc.UserID = "15559990000"
			record(t, b.s, tc)
			if got := mustGet(t, b.s, tc.Key); !got.NoClickID || got.ClickID != "" || got.AdID != none.AdID {
				t.Errorf("Get = %+v; want no click id, flagged, with its ad id", got)
			}
			m := Touch{Key: Key{Messenger, "1067280970047460", "6254557967970212"}, AdID: "6045246247433", SourceType: "ADS", Time: t0}
			record(t, b.s, m)
			if got := mustGet(t, b.s, m.Key); got.NoClickID {
				t.Errorf("Messenger context flagged no_click_id: Messenger has no ctwa_clid to miss")
			}
		})
	}
}

// TestFlagsCostNoByte: the policy and no-click-id flags live in the format
// byte, so a context is as long under either policy (the memory budget).
func TestFlagsCostNoByte(t *testing.T) {
	tc := waTouch(testUser, testClid, t0)
	c := touchContext(&tc)
	plain := encodeContext(&c)
	c.FirstTouch = true
	ft := encodeContext(&c)
	if len(ft) != len(plain) || ft[0] != formatV1|flagFirstTouch || string(ft[1:]) != string(plain[1:]) {
		t.Errorf("first touch encodes as % x; want the last-touch bytes with only the first byte's flag", ft)
	}
	var back Context
	if err := decodeContext(string(ft), &back); err != nil || !back.FirstTouch || back.NoClickID {
		t.Errorf("decode = %+v, %v", back, err)
	}
	if err := decodeContext(string([]byte{0x41})+string(plain[1:]), &back); err == nil {
		t.Errorf("unknown flag decoded without error")
	}
}
