package attribution

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

const (
	testWABA  = "102290129340398"
	testPhone = "106540352242922" // phone_number_id of testWABA
	testUser  = "16315551234"
	testClid  = "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a"
)

var t0 = time.Date(2025, 11, 23, 12, 13, 20, 0, time.UTC)

func newTestStore(t *testing.T, ttl time.Duration) (*Store, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb, err := NewClient("redis://" + mr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return NewStore(rdb, ttl), mr
}

// waTouch is a WhatsApp Cloud API click as ingest would record it.
func waTouch(user, clid string, at time.Time) Touch {
	return Touch{
		Key:           Key{Channel: WhatsApp, BusinessID: testWABA, UserID: user},
		PhoneNumberID: testPhone,
		ClickID:       clid,
		AdID:          "120212345678901234",
		SourceType:    "ad",
		SourceURL:     "https://fb.me/3cr4Wqqkv",
		Time:          at,
	}
}

func record(t *testing.T, s *Store, touches ...Touch) {
	t.Helper()
	if err := s.Record(t.Context(), touches); err != nil {
		t.Fatalf("Record: %v", err)
	}
}

func mustGet(t *testing.T, s *Store, k Key) Context {
	t.Helper()
	c, err := s.Get(t.Context(), k)
	if err != nil {
		t.Fatalf("Get(%v): %v", k, err)
	}
	return c
}

func TestRecordGet(t *testing.T) {
	s, _ := newTestStore(t, 0)
	wa := waTouch(testUser, testClid, t0)
	msg := Touch{
		Key:  Key{Channel: Messenger, BusinessID: "1067280970047460", UserID: "6254557967970212"},
		AdID: "6045246247433", SourceType: "ADS", Ref: "summer sale:é", Time: t0.Add(1500 * time.Millisecond),
	}
	ig := Touch{
		Key:  Key{Channel: Instagram, BusinessID: "17841405822304914", UserID: "1254459154682919"},
		AdID: "1234567890", Time: t0.Add(-time.Hour),
	}
	record(t, s, wa, msg, ig)

	tests := []struct {
		name string
		key  Key
		want Context
	}{
		{"whatsapp", wa.Key, Context{Key: wa.Key, ClickID: testClid, AdID: wa.AdID, SourceType: "ad",
			SourceURL: wa.SourceURL, FirstSeen: t0, LastSeen: t0}},
		{"messenger", msg.Key, Context{Key: msg.Key, AdID: msg.AdID, SourceType: "ADS", Ref: msg.Ref,
			FirstSeen: msg.Time, LastSeen: msg.Time}},
		{"instagram", ig.Key, Context{Key: ig.Key, AdID: ig.AdID, FirstSeen: ig.Time, LastSeen: ig.Time}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustGet(t, s, tt.key)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Get(%v) mismatch (-want +got):\n%s", tt.key, d)
			}
		})
	}
	if s.TTL() != DefaultTTL {
		t.Errorf("TTL() = %v; want %v", s.TTL(), DefaultTTL)
	}
}

func TestGetNotFound(t *testing.T) {
	s, _ := newTestStore(t, 0)
	for _, k := range []Key{
		{Channel: WhatsApp, BusinessID: testWABA, UserID: testUser},
		{Channel: WhatsApp, BusinessID: testPhone, UserID: testUser}, // no alias either
		{Channel: "sms", BusinessID: testWABA, UserID: testUser},
		{Channel: Messenger, BusinessID: "a:b", UserID: "c"},
	} {
		_, err := s.Get(t.Context(), k)
		if !errors.Is(err, ErrNotFound) || errors.Is(err, redis.Nil) {
			t.Errorf("Get(%v) = %v; want ErrNotFound (and not redis.Nil)", k, err)
		}
	}
}

// permutations returns every ordering of xs.
func permutations(xs []Touch) [][]Touch {
	if len(xs) <= 1 {
		return [][]Touch{xs}
	}
	var out [][]Touch
	for i := range xs {
		rest := append(append([]Touch{}, xs[:i]...), xs[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]Touch{xs[i]}, p...))
		}
	}
	return out
}

func TestLatestClickWinsInAnyOrder(t *testing.T) {
	first := waTouch(testUser, "ARAfirst", t0)
	middle := waTouch(testUser, "ARAmiddle", t0.Add(time.Hour))
	middle.AdID, middle.SourceURL = "999", "https://www.instagram.com/p/xyz"
	latest := waTouch(testUser, "ARAlatest", t0.Add(2*time.Hour))
	latest.SourceURL = "" // the latest click's fields win, empty ones included

	for _, order := range permutations([]Touch{first, middle, latest}) {
		s, mr := newTestStore(t, 0)
		for _, tc := range order { // one call per delivery, as Meta sends them
			record(t, s, tc)
		}
		got := mustGet(t, s, first.Key)
		want := Context{Key: first.Key, ClickID: "ARAlatest", AdID: latest.AdID, SourceType: "ad",
			FirstSeen: t0, LastSeen: latest.Time}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("order %s, %s, %s: mismatch (-want +got):\n%s",
				order[0].ClickID, order[1].ClickID, order[2].ClickID, d)
		}
		mr.Close()
	}
}

// Two different clicks at the same millisecond must settle on one winner
// whatever the arrival order, or replays could flip the reported click.
func TestEqualTimesConverge(t *testing.T) {
	a := waTouch(testUser, "ARAaaaa", t0)
	b := waTouch(testUser, "ARAbbbb", t0)
	s1, _ := newTestStore(t, 0)
	record(t, s1, a)
	record(t, s1, b)
	s2, _ := newTestStore(t, 0)
	record(t, s2, b)
	record(t, s2, a)
	if c1, c2 := mustGet(t, s1, a.Key), mustGet(t, s2, a.Key); c1.ClickID != c2.ClickID {
		t.Errorf("equal-time clicks: a then b kept %q, b then a kept %q; want the same", c1.ClickID, c2.ClickID)
	}
}

func TestDuplicatesIdempotent(t *testing.T) {
	s, mr := newTestStore(t, 0)
	older := waTouch(testUser, "ARAolder", t0.Add(-time.Hour))
	click := waTouch(testUser, testClid, t0)
	key, _ := contextKey(click.Key)

	record(t, s, older, click)
	want, _ := mr.Get(key)
	for _, batch := range [][]Touch{{click}, {older}, {click, click, older}, {older, click}} {
		record(t, s, batch...)
		if got, _ := mr.Get(key); got != want {
			t.Fatalf("after re-recording %d touches the stored value changed:\n got %q\nwant %q", len(batch), got, want)
		}
	}
	if n := len(mr.Keys()); n != 2 { // the context and the phone alias
		t.Errorf("keys = %v; want one context and one alias", mr.Keys())
	}
}

func TestExpiry(t *testing.T) {
	const ttl = 7 * 24 * time.Hour
	s, mr := newTestStore(t, ttl)
	click := waTouch(testUser, testClid, t0)
	key, _ := contextKey(click.Key)
	record(t, s, click)
	if got := mr.TTL(key); got != ttl {
		t.Fatalf("TTL after first click = %v; want %v", got, ttl)
	}

	// An older click (a replay) updates first seen but does not extend life.
	mr.FastForward(5 * 24 * time.Hour)
	record(t, s, waTouch(testUser, "ARAolder", t0.Add(-time.Hour)))
	if got := mr.TTL(key); got != 2*24*time.Hour {
		t.Errorf("TTL after an older click = %v; want unchanged 48h", got)
	}
	if c := mustGet(t, s, click.Key); !c.FirstSeen.Equal(t0.Add(-time.Hour)) || c.ClickID != testClid {
		t.Errorf("after older click: first seen %v, click %q; want %v and the newer click", c.FirstSeen, c.ClickID, t0.Add(-time.Hour))
	}

	// A newer click starts a new window, counted from when it is recorded.
	record(t, s, waTouch(testUser, "ARAnewer", t0.Add(time.Hour)))
	if got := mr.TTL(key); got != ttl {
		t.Errorf("TTL after a newer click = %v; want %v", got, ttl)
	}
	mr.FastForward(ttl - time.Second)
	mustGet(t, s, click.Key)
	mr.FastForward(time.Second)
	if _, err := s.Get(t.Context(), click.Key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after ttl = %v; want ErrNotFound", err)
	}
}

func TestRecordInvalid(t *testing.T) {
	good := waTouch(testUser, testClid, t0)
	tests := []struct {
		name   string
		modify func(*Touch)
	}{
		{"unknown channel", func(t *Touch) { t.Channel = "sms" }},
		{"no business", func(t *Touch) { t.BusinessID = "" }},
		{"no user", func(t *Touch) { t.UserID = "" }},
		{"colon in user", func(t *Touch) { t.UserID = testUser + ":x" }},
		{"brace in business", func(t *Touch) { t.BusinessID = "}" }},
		{"long user", func(t *Touch) { t.UserID = strings.Repeat("1", MaxIDLen+1) }},
		{"phone id on messenger", func(t *Touch) { t.Channel = Messenger }},
		{"bad phone id", func(t *Touch) { t.PhoneNumberID = "1 2" }},
		{"zero time", func(t *Touch) { t.Time = time.Time{} }},
		{"before 1970", func(t *Touch) { t.Time = time.Unix(-1, 0) }},
		{"far future", func(t *Touch) { t.Time = time.UnixMilli(maxMillis + 1) }},
		{"huge click id", func(t *Touch) { t.ClickID = strings.Repeat("A", maxField+1) }},
		{"long alias", func(t *Touch) { t.Aliases = []string{"US." + strings.Repeat("1", MaxIDLen-2)} }},
		{"colon in alias", func(t *Touch) { t.Aliases = []string{"US.1:x"} }},
		{"empty alias", func(t *Touch) { t.Aliases = []string{""} }},
		{"four aliases", func(t *Touch) { t.Aliases = []string{"A", "B", "C", "D"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, mr := newTestStore(t, 0)
			bad := good
			tt.modify(&bad)
			if err := bad.Validate(); !errors.Is(err, ErrInvalidTouch) {
				t.Errorf("Validate = %v; want ErrInvalidTouch", err)
			}
			err := s.Record(t.Context(), []Touch{good, bad})
			if !errors.Is(err, ErrInvalidTouch) {
				t.Fatalf("Record = %v; want ErrInvalidTouch", err)
			}
			if msg := err.Error(); strings.Contains(msg, testUser) || strings.Contains(msg, testClid) {
				t.Errorf("error %q contains personal data", msg)
			}
			if keys := mr.Keys(); len(keys) != 0 {
				t.Errorf("keys after a rejected call = %v; want none", keys)
			}
		})
	}
}

func TestRecordRecoversFromScriptFlush(t *testing.T) {
	s, mr := newTestStore(t, 0)
	record(t, s, waTouch(testUser, "ARAfirst", t0))
	if err := s.rdb.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	record(t, s, waTouch(testUser, "ARAsecond", t0.Add(time.Second)))
	if c := mustGet(t, s, Key{WhatsApp, testWABA, testUser}); c.ClickID != "ARAsecond" || !c.FirstSeen.Equal(t0) {
		t.Errorf("after SCRIPT FLUSH: click %q first seen %v; want ARAsecond, %v", c.ClickID, c.FirstSeen, t0)
	}
	_ = mr
}

func TestStoreDown(t *testing.T) {
	s, mr := newTestStore(t, 0)
	mr.Close()
	err := s.Record(t.Context(), []Touch{waTouch(testUser, testClid, t0)})
	if err == nil || !strings.HasPrefix(err.Error(), "attribution: record: ") {
		t.Fatalf("Record with Redis down = %v; want an attribution: record: error", err)
	}
	if _, err := s.Get(t.Context(), Key{WhatsApp, testWABA, testUser}); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Get with Redis down = %v; want an error other than ErrNotFound", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping with Redis down succeeded")
	}
}

// TestAliasWrittenOncePerRefresh: repeated touches on one business number
// send its alias once per aliasRefresh, and again at once after a failed
// write or when the number moves to another WABA.
func TestAliasWrittenOncePerRefresh(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	s := NewStore(rdb, time.Hour)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	touch := func(user, waba string) Touch {
		return Touch{Key: Key{Channel: WhatsApp, BusinessID: waba, UserID: user}, PhoneNumberID: "106540352242922",
			ClickID: "clid", Time: now}
	}
	record := func(tt Touch) {
		t.Helper()
		if err := s.Record(t.Context(), []Touch{tt}); err != nil {
			t.Fatal(err)
		}
	}
	alias := aliasKey("106540352242922")
	record(touch("1", "102290129340398"))
	if got, _ := mr.Get(alias); got != "102290129340398" {
		t.Fatalf("alias after first touch = %q; want the WABA id", got)
	}
	mr.Del(alias)
	record(touch("2", "102290129340398"))
	if mr.Exists(alias) {
		t.Errorf("alias rewritten within aliasRefresh; want it skipped")
	}
	now = now.Add(aliasRefresh)
	record(touch("3", "102290129340398"))
	if !mr.Exists(alias) {
		t.Errorf("alias not rewritten after aliasRefresh")
	}
	record(touch("4", "999990000011111"))
	if got, _ := mr.Get(alias); got != "999990000011111" {
		t.Errorf("alias after the number moved = %q; want the new WABA id", got)
	}
	mr.Del(alias)
	mr.SetError("LOADING")
	if err := s.Record(t.Context(), []Touch{touch("5", "999990000011111")}); err == nil {
		t.Fatal("Record with Redis failing = nil; want an error")
	}
	mr.SetError("")
	record(touch("6", "999990000011111"))
	if !mr.Exists(alias) {
		t.Errorf("alias not rewritten after a failed write")
	}
}
