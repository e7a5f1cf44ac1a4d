package attribution

import (
	"errors"
	"testing"
)

func TestPhoneNumberIDResolves(t *testing.T) {
	s, mr := newTestStore(t, 0)
	click := waTouch(testUser, testClid, t0)
	record(t, s, click)
	if v, _ := mr.Get(aliasKey(testPhone)); v != testWABA {
		t.Fatalf("alias %s = %q; want %q", aliasKey(testPhone), v, testWABA)
	}
	got := mustGet(t, s, Key{Channel: WhatsApp, BusinessID: testPhone, UserID: testUser})
	if got.Key != click.Key || got.ClickID != testClid {
		t.Errorf("Get by phone_number_id = key %v, click %q; want key %v (stored under the WABA id)", got.Key, got.ClickID, click.Key)
	}
	// The alias is for WhatsApp only.
	if _, err := s.Get(t.Context(), Key{Channel: Messenger, BusinessID: testPhone, UserID: testUser}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(messenger, phone id) = %v; want ErrNotFound", err)
	}
}

func TestLookupMixed(t *testing.T) {
	s, _ := newTestStore(t, 0)
	a := waTouch("111", "ARAaaaa", t0)
	b := waTouch("222", "ARAbbbb", t0)
	m := Touch{Key: Key{Channel: Messenger, BusinessID: testWABA, UserID: "333"}, AdID: "42", Time: t0}
	record(t, s, a, b, m)

	keys := []Key{
		a.Key, // hit
		{Channel: WhatsApp, BusinessID: testWABA, UserID: "404"},  // miss
		{Channel: WhatsApp, BusinessID: testPhone, UserID: "222"}, // hit through the alias
		{Channel: WhatsApp, BusinessID: testPhone, UserID: "404"}, // alias, no context
		{Channel: WhatsApp, BusinessID: "7777", UserID: "111"},    // unknown business
		m.Key, // messenger hit, same business id
		{Channel: Messenger, BusinessID: testPhone, UserID: "333"}, // no alias for messenger
		{Channel: "", BusinessID: testWABA, UserID: "111"},         // invalid key
		a.Key, // repeated
	}
	got, err := s.Lookup(t.Context(), keys)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ARAaaaa", "", "ARAbbbb", "", "", "m", "", "", "ARAaaaa"}
	if len(got) != len(keys) {
		t.Fatalf("Lookup returned %d entries for %d keys", len(got), len(keys))
	}
	for i, c := range got {
		switch {
		case want[i] == "" && c != nil:
			t.Errorf("Lookup[%d] (%v) = %+v; want nil", i, keys[i], c)
		case want[i] != "" && c == nil:
			t.Errorf("Lookup[%d] (%v) = nil; want a context", i, keys[i])
		case c != nil && c.Channel == WhatsApp && (c.ClickID != want[i] || c.BusinessID != testWABA):
			t.Errorf("Lookup[%d] = click %q under %q; want %q under the WABA id", i, c.ClickID, c.BusinessID, want[i])
		case c != nil && c.Channel == Messenger && c.Key != m.Key:
			t.Errorf("Lookup[%d] = %v; want %v", i, c.Key, m.Key)
		}
	}
	if keys[2].BusinessID != testPhone {
		t.Errorf("Lookup modified its argument: keys[2] = %v", keys[2])
	}
	if got, err := s.Lookup(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("Lookup(nil) = %v, %v; want empty, nil", got, err)
	}
}
