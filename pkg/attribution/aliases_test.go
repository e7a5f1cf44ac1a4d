package attribution

import (
	"strings"
	"testing"
)

// testBSUID is a WhatsApp business-scoped user id as Meta formats it: a
// two-letter country code, a period, up to 128 alphanumerics.
const testBSUID = "US.13491208655302741918"

// checkFoundBy fails t unless each of users finds ctx's click, under the
// key it was asked for, directly and through the phone_number_id.
func checkFoundBy(t *testing.T, s *Store, clid string, users ...string) {
	t.Helper()
	var keys []Key
	for _, u := range users {
		keys = append(keys, Key{WhatsApp, testWABA, u}, Key{WhatsApp, testPhone, u})
	}
	cs, err := s.Lookup(t.Context(), keys)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	for i, c := range cs {
		if c == nil || c.ClickID != clid || c.UserID != keys[i].UserID || c.BusinessID != testWABA {
			t.Errorf("Lookup(%v) = %+v; want click %q under the WABA id", keys[i], c, clid)
		}
	}
}

func TestAliasesKeyTheContext(t *testing.T) {
	s, mr := newTestStore(t, 0)
	bsuidOnly := waTouch(testBSUID, "CLID-BSUID-ONLY", t0)
	both := waTouch("15550001111", "CLID-BOTH", t0)
	both.Aliases = []string{"US.2", "US.2"} // duplicates are one key
	record(t, s, bsuidOnly, both)
	checkFoundBy(t, s, "CLID-BSUID-ONLY", testBSUID)
	checkFoundBy(t, s, "CLID-BOTH", "15550001111", "US.2")
	// Contexts under the two keys plus the phone_number_id alias.
	if n := len(mr.Keys()); n != 4 {
		t.Errorf("%d keys %v; want 4", n, mr.Keys())
	}
}

func TestMaxIDLenFitsABSUID(t *testing.T) {
	s, _ := newTestStore(t, 0)
	longest := "BR." + strings.Repeat("a", 128)
	if len(longest) != MaxIDLen {
		t.Fatalf("longest BSUID has %d characters; MaxIDLen is %d", len(longest), MaxIDLen)
	}
	tc := waTouch("5511988881234", testClid, t0)
	tc.Aliases = []string{longest}
	if err := tc.Validate(); err != nil {
		t.Fatalf("Validate(longest BSUID) = %v", err)
	}
	alone := waTouch(longest, testClid, t0)
	record(t, s, tc, alone)
	checkFoundBy(t, s, testClid, longest, "5511988881234")
}
