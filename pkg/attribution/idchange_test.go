package attribution

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	oldBSUID = "US.13491208655302741918"
	newBSUID = "US.88810072256034411112"
	oldPhone = "16315551234"
	newPhone = "16315559876"
)

func changeID(t *testing.T, s *Store, old, new []string) ChangeOutcome {
	t.Helper()
	got, err := s.ChangeID(t.Context(), IDChange{Channel: WhatsApp, BusinessID: testWABA, Old: old, New: new})
	if err != nil {
		t.Fatalf("ChangeID: %v", err)
	}
	return got
}

// TestChangeIDFollowsTheUser: after user_changed_user_id and
// user_changed_number, the new ids find the original click, by WABA id and
// by phone_number_id, through an alias that names the old id's context and
// lives as long as it does.
func TestChangeIDFollowsTheUser(t *testing.T) {
	for _, b := range backends(t, 24*time.Hour) {
		t.Run(b.name, func(t *testing.T) {
			record(t, b.s, waTouch(oldBSUID, "ARAbsuidOnly", t0))
			tc := waTouch(oldPhone, "ARAphoneAndBSUID", t0)
			tc.Aliases = []string{"US.1000"}
			record(t, b.s, tc)
			if b.ff != nil {
				b.ff(time.Hour)
			}
			if got := changeID(t, b.s, []string{oldBSUID}, []string{newBSUID}); got != ChangeLinked {
				t.Fatalf("user_changed_user_id: %v; want linked", got)
			}
			if got := changeID(t, b.s, []string{oldPhone, "US.1000"}, []string{newPhone, "US.2000"}); got != ChangeLinked {
				t.Fatalf("user_changed_number: %v; want linked", got)
			}
			for _, tt := range []struct{ ask, clid, under string }{
				{newBSUID, "ARAbsuidOnly", oldBSUID},
				{oldBSUID, "ARAbsuidOnly", oldBSUID},
				{newPhone, "ARAphoneAndBSUID", ""},
				{"US.2000", "ARAphoneAndBSUID", ""},
			} {
				cs, err := b.s.Lookup(t.Context(), []Key{{WhatsApp, testWABA, tt.ask}, {WhatsApp, testPhone, tt.ask}})
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range cs {
					if c == nil || c.ClickID != tt.clid || c.BusinessID != testWABA || (tt.under != "" && c.UserID != tt.under) {
						t.Errorf("Lookup(%s) = %+v; want click %s under the WABA id", tt.ask, c, tt.clid)
					}
				}
			}
			// The alias has the context's remaining TTL, not a new one. The
			// script copies the context's PTTL, whole milliseconds read a
			// moment later, so the alias may end up to a few milliseconds
			// after it (1 ms seen on redis-server): never more.
			ctxTTL, aliasTTL := pttl(t, b.s, Key{WhatsApp, testWABA, oldBSUID}), pttl(t, b.s, Key{WhatsApp, testWABA, newBSUID})
			if aliasTTL <= 0 || aliasTTL > ctxTTL+5*time.Millisecond || ctxTTL-aliasTTL > time.Second {
				t.Errorf("alias PTTL %v, context PTTL %v; want the alias to go with the context", aliasTTL, ctxTTL)
			}
			if b.ff != nil {
				if aliasTTL != 23*time.Hour {
					t.Errorf("alias PTTL = %v; want 23h, what the context had left", aliasTTL)
				}
				b.ff(23 * time.Hour)
				if _, err := b.s.Get(t.Context(), Key{WhatsApp, testWABA, newBSUID}); !errors.Is(err, ErrNotFound) {
					t.Errorf("Get(new id) after the context expired = %v; want ErrNotFound", err)
				}
			}
		})
	}
}

// TestChangeIDChains: A→B then B→C makes C name A's context directly, so a
// lookup follows one alias at most, and an alias found behind an alias is
// not followed.
func TestChangeIDChains(t *testing.T) {
	for _, b := range backends(t, 0) {
		t.Run(b.name, func(t *testing.T) {
			record(t, b.s, waTouch("US.A", "ARAchain", t0))
			changeID(t, b.s, []string{"US.A"}, []string{"US.B"})
			if got := changeID(t, b.s, []string{"US.B"}, []string{"US.C"}); got != ChangeLinked {
				t.Fatalf("B→C: %v; want linked", got)
			}
			ck, _ := contextKey(Key{WhatsApp, testWABA, "US.C"})
			if v := b.s.rdb.Get(t.Context(), ck).Val(); v != encodeAlias("US.A", false) {
				t.Errorf("C holds %q; want an alias naming A", v)
			}
			for _, u := range []string{"US.A", "US.B", "US.C"} {
				if got := mustGet(t, b.s, Key{WhatsApp, testWABA, u}); got.ClickID != "ARAchain" || got.UserID != "US.A" {
					t.Errorf("Get(%s) = %+v; want A's click", u, got)
				}
			}
			// A hand-made alias to an alias (never written by ChangeID) is
			// not followed: depth is bounded.
			dk, _ := contextKey(Key{WhatsApp, testWABA, "US.D"})
			b.s.rdb.Set(t.Context(), dk, encodeAlias("US.C", false), time.Hour)
			if _, err := b.s.Get(t.Context(), Key{WhatsApp, testWABA, "US.D"}); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get through two aliases = %v; want ErrNotFound", err)
			}
		})
	}
}

func TestChangeIDOutcomes(t *testing.T) {
	s, mr := newTestStore(t, 0)
	if got := changeID(t, s, []string{"US.nobody"}, []string{"US.new"}); got != ChangeNoContext {
		t.Errorf("no context: %v; want ChangeNoContext", got)
	}
	if n := len(mr.Keys()); n != 0 {
		t.Errorf("no context wrote %v", mr.Keys())
	}
	// A click under the new id came first: it is the new id's context.
	record(t, s, waTouch("US.old", "ARAold", t0), waTouch("US.new", "ARAnew", t0.Add(time.Hour)))
	if got := changeID(t, s, []string{"US.old"}, []string{"US.new"}); got != ChangeOwnContext {
		t.Errorf("new id with its own click: %v; want ChangeOwnContext", got)
	}
	if got := mustGet(t, s, Key{WhatsApp, testWABA, "US.new"}); got.ClickID != "ARAnew" {
		t.Errorf("new id's own click replaced by %q", got.ClickID)
	}
	for _, bad := range []IDChange{
		{Channel: WhatsApp, BusinessID: testWABA, New: []string{"US.x"}},
		{Channel: WhatsApp, BusinessID: testWABA, Old: []string{"US.x"}, New: []string{"a:b"}},
		{Channel: "sms", BusinessID: testWABA, Old: []string{"1"}, New: []string{"2"}},
		{Channel: WhatsApp, BusinessID: testWABA, Old: []string{"1", "2", "3", "4", "5"}, New: []string{"6"}},
	} {
		if _, err := s.ChangeID(t.Context(), bad); !errors.Is(err, ErrInvalidIDChange) || strings.Contains(err.Error(), "US.x") {
			t.Errorf("ChangeID(%+v) = %v; want ErrInvalidIDChange without the ids", bad, err)
		}
	}
}

// TestClickUnderNewID: a click under the new id is later than the
// conversation's (the id did not exist before). Under last touch it becomes
// the conversation's context under that id; under first touch the alias
// stays, so the first click is still the one reported, unless the first had
// no click id and this one has.
func TestClickUnderNewID(t *testing.T) {
	for _, b := range backends(t, 0) {
		t.Run(b.name, func(t *testing.T) {
			for _, tt := range []struct {
				name      string
				policy    func(Touch) Touch
				stored    string
				want      string
				wantFirst time.Time
			}{
				{"last touch", func(tc Touch) Touch { return tc }, "ARAold", "ARAnew", t0.Add(time.Hour)},
				{"first touch", firstTouch, "ARAold", "ARAold", t0},
				{"first touch, first had no click id", firstTouch, "", "ARAnew", t0.Add(time.Hour)},
			} {
				t.Run(tt.name, func(t *testing.T) {
					old, new := "US.old"+fmtName(tt.name), "US.new"+fmtName(tt.name)
					record(t, b.s, tt.policy(waTouch(old, tt.stored, t0)))
					changeID(t, b.s, []string{old}, []string{new})
					record(t, b.s, tt.policy(waTouch(new, "ARAnew", t0.Add(time.Hour))))
					got := mustGet(t, b.s, Key{WhatsApp, testWABA, new})
					if got.ClickID != tt.want || !got.FirstSeen.Equal(tt.wantFirst) {
						t.Errorf("Get(new id) = click %q first seen %v; want %q, %v", got.ClickID, got.FirstSeen, tt.want, tt.wantFirst)
					}
				})
			}
		})
	}
}

// fmtName turns a subtest name into id characters.
func fmtName(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= 'a' && c <= 'z' {
			b.WriteRune(c)
		}
	}
	return b.String()
}
