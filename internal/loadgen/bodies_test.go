package loadgen

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

func TestPoolBodiesVerifyAndParseToOneUniqueTouch(t *testing.T) {
	mix, err := ParseMix(DefaultMix)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("load-secret")
	now := time.Unix(1764000000, 0)
	g := NewBodyGen(4)
	const n = 3000
	p := NewPool(g, mix, secret, 500, n, now)
	users := map[string]bool{}
	clicks := map[string]bool{}
	perChannel := map[string]int{}
	for i := range p.Len() {
		s := p.Item(i)
		if !json.Valid(s.Body) {
			t.Fatalf("body %d is not valid JSON: %s", i, s.Body)
		}
		if err := webhook.Verify(s.Body, s.Signature, [][]byte{secret}); err != nil {
			t.Fatalf("body %d: Verify = %v; want nil", i, err)
		}
		if err := webhook.Verify(s.Body, s.Signature, [][]byte{[]byte("other")}); err == nil {
			t.Fatalf("body %d verifies under a different secret", i)
		}
		pl, err := webhook.Parse(s.Body)
		if err != nil || len(pl.Touches) != 1 || pl.Ignored != 0 || pl.Malformed != 0 {
			t.Fatalf("body %d: Parse = %d touches, %d ignored, %d malformed, %v; want exactly one touch",
				i, len(pl.Touches), pl.Ignored, pl.Malformed, err)
		}
		tc := pl.Touches[0]
		if string(tc.Channel) != s.Channel || string(pl.Channel) != s.Channel {
			t.Fatalf("body %d: channel %q, payload %q; want %q", i, tc.Channel, pl.Channel, s.Channel)
		}
		if tc.Time != now.Unix() {
			t.Errorf("body %d: time %d; want %d", i, tc.Time, now.Unix())
		}
		if tc.AdID == "" || tc.BusinessID == "" {
			t.Errorf("body %d: touch without ad or business id: %+v", i, tc)
		}
		k := string(tc.Channel) + "/" + tc.BusinessID + "/" + tc.UserID
		if users[k] {
			t.Fatalf("body %d: user %v seen twice", i, k)
		}
		users[k] = true
		if tc.Channel == webhook.WhatsApp {
			if len(tc.ClickID) != clidLen || clicks[tc.ClickID] {
				t.Fatalf("body %d: ctwa_clid of length %d, duplicate %v", i, len(tc.ClickID), clicks[tc.ClickID])
			}
			clicks[tc.ClickID] = true
			if tc.PhoneNumberID == "" {
				t.Errorf("body %d: WhatsApp touch without phone_number_id", i)
			}
		}
		perChannel[s.Channel]++
	}
	want := map[string]int{"whatsapp": n * 6 / 10, "messenger": n * 3 / 10, "instagram": n / 10}
	for ch, w := range want {
		if perChannel[ch] != w {
			t.Errorf("%s bodies = %d; want %d (mix %s)", ch, perChannel[ch], w, DefaultMix)
		}
	}
}

func TestBodyGenMatchesFixtureShape(t *testing.T) {
	// The generated bodies carry every field the fixtures' ad clicks do, so
	// the parser does the same work on them.
	g := NewBodyGen(1)
	for _, ch := range []string{"whatsapp", "messenger", "instagram"} {
		var v map[string]any
		if err := json.Unmarshal(g.Append(nil, ch, 7, time.Now()), &v); err != nil {
			t.Fatalf("%s: %v", ch, err)
		}
		if _, ok := v["entry"].([]any); !ok {
			t.Errorf("%s: no entry array in %v", ch, v)
		}
	}
}

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
		total   int
	}{
		{"whatsapp=6,messenger=3,instagram=1", false, 10},
		{"whatsapp=1", false, 1},
		{" messenger=2 , instagram=0", false, 2},
		{"whatsapp=0", true, 0},
		{"telegram=1", true, 0},
		{"whatsapp", true, 0},
		{"whatsapp=-1,messenger=2", true, 0},
		{"", true, 0},
	}
	for _, tt := range tests {
		m, err := ParseMix(tt.in)
		if (err != nil) != tt.wantErr || m.total != tt.total {
			t.Errorf("ParseMix(%q) = total %d, %v; want total %d, error %v", tt.in, m.total, err, tt.total, tt.wantErr)
		}
	}
}

func TestMixCycle(t *testing.T) {
	m, _ := ParseMix("whatsapp=2,messenger=1")
	var got []string
	for i := range uint64(6) {
		got = append(got, m.Channel(i))
	}
	want := []string{"whatsapp", "whatsapp", "messenger", "whatsapp", "whatsapp", "messenger"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Channel(0..5) = %v; want %v", got, want)
		}
	}
}

func TestPoolNextWraps(t *testing.T) {
	m, _ := ParseMix("messenger=1")
	p := NewPool(NewBodyGen(1), m, []byte("s"), 0, 3, time.Now())
	var got []int
	for range 5 {
		got = append(got, p.Next())
	}
	if want := []int{0, 1, 2, 0, 1}; !equalInts(got, want) || p.Used() != 5 {
		t.Errorf("Next x5 = %v, Used %d; want %v, 5", got, p.Used(), want)
	}
	p.Rewind()
	if p.Next() != 0 {
		t.Errorf("Next after Rewind != 0")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
