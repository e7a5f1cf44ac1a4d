package webhook

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseIDChangeFixtures checks the id_changes of expected.json: the
// system messages of Meta's "System messages webhook reference".
func TestParseIDChangeFixtures(t *testing.T) {
	var exps []struct {
		File      string     `json:"file"`
		IDChanges []IDChange `json:"id_changes"`
	}
	if err := json.Unmarshal(readFixture(t, "expected.json"), &exps); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, exp := range exps {
		pl := parseFixture(t, exp.File, "")
		if diff := cmp.Diff(exp.IDChanges, pl.IDChanges); diff != "" {
			t.Errorf("%s: IDChanges (-want +got):\n%s", exp.File, diff)
		}
		seen += len(exp.IDChanges)
	}
	if seen != 2 {
		t.Errorf("expected.json lists %d id changes; want the 2 system message fixtures", seen)
	}
}

// TestParseIDChangeEdges: be liberal in the ids taken, strict about their
// types; other system messages are ignored; the body is never read.
func TestParseIDChangeEdges(t *testing.T) {
	wrap := func(msg string) []byte {
		return []byte(`{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages",
			"value":{"metadata":{"phone_number_id":"106540352242922"},"messages":[` + msg + `]}}]}]}`)
	}
	tests := []struct {
		name               string
		msg                string
		want               []IDChange
		ignored, malformed int
	}{
		{"old BSUID only in from_user_id",
			`{"from_user_id":"US.1","type":"system","system":{"type":"user_changed_user_id","user_id":"US.2"}}`,
			[]IDChange{{Type: SystemUserChangedUserID, BusinessID: "102290129340398", Old: []string{"US.1"}, New: []string{"US.2"}}}, 0, 0},
		{"phone change before August 2026: no BSUIDs",
			`{"from":"111","timestamp":"5","type":"system","system":{"type":"user_changed_number","wa_id":"222","body":"User X changed from 111 to 222"}}`,
			[]IDChange{{Type: SystemUserChangedNumber, BusinessID: "102290129340398", Old: []string{"111"}, New: []string{"222"}, Time: 5}}, 0, 0},
		{"older name and new_wa_id",
			`{"from":"111","type":"system","system":{"type":"customer_changed_number","new_wa_id":"222"}}`,
			[]IDChange{{Type: SystemUserChangedNumber, BusinessID: "102290129340398", Old: []string{"111"}, New: []string{"222"}}}, 0, 0},
		{"the same id on both sides is no change",
			`{"from_user_id":"US.1","type":"system","system":{"type":"user_changed_user_id","user_id":"US.1","previous_user_id":"US.1"}}`,
			nil, 0, 1},
		{"another system message", `{"from":"111","type":"system","system":{"type":"customer_identity_changed","identity":"x"}}`, nil, 1, 0},
		{"system is not an object", `{"from":"111","type":"system","system":"x"}`, nil, 0, 1},
		{"an id of the wrong type", `{"from":111,"type":"system","system":{"type":"user_changed_number","wa_id":"222"}}`, nil, 0, 1},
		{"no new id", `{"from":"111","type":"system","system":{"type":"user_changed_number"}}`, nil, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := Parse(wrap(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, pl.IDChanges); diff != "" {
				t.Errorf("IDChanges (-want +got):\n%s", diff)
			}
			if pl.Ignored != tt.ignored || pl.Malformed != tt.malformed || len(pl.Touches) != 0 {
				t.Errorf("Ignored, Malformed, Touches = %d, %d, %d; want %d, %d, 0", pl.Ignored, pl.Malformed, len(pl.Touches), tt.ignored, tt.malformed)
			}
			if b, _ := json.Marshal(pl); strings.Contains(string(b), "changed from") {
				t.Errorf("the system body (a name and numbers) reached the Payload")
			}
		})
	}
}

func TestParseOnPremIDChange(t *testing.T) {
	body := []byte(`{"messages":[{"from":"111","type":"system","system":{"type":"user_changed_number","wa_id":"222"}}]}`)
	pl, err := ParseOnPrem(body, "102290129340398")
	if err != nil || len(pl.IDChanges) != 1 || pl.IDChanges[0].BusinessID != "102290129340398" {
		t.Errorf("ParseOnPrem = %+v, %v; want one change for the configured WABA", pl, err)
	}
}
