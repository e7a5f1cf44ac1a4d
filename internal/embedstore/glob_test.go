package embedstore

import (
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"
)

// globKeys and globPatterns are the table TestGlobMatchesRedis runs on
// both stores: stars across `/` and `:`, sets, ranges (reversed too),
// negation, escapes inside and outside sets, unclosed sets, and keys of
// the shapes the services write (contexts hold `/` in source URLs' ids).
var (
	globKeys = []string{
		"a", "b", "ab", "abc", "a/b", "a/b/c", "x/y", "/", "//", "a*", "a?", "a[", "a]", "a\\b", "a-b", "a^",
		"hello", "hallo", "hxllo", "hllo", "heeeello", "c:{w:1:2}", "c:{m:1/2:3}", "ctm:ledger:{ord/1}",
		"ctm:biz:{1}:paused", "p:{106}", "\x00k", "k\x00", "é",
	}
	globPatterns = []string{
		"*", "a*", "*b", "a*c", "a/*", "*/*", "a/*/c", "*/", "/*", "**", "***b",
		"?", "??", "a?", "a?b", "?/?",
		"h[ae]llo", "h[^e]llo", "h[a-b]llo", "h[b-a]llo", "h*llo", "h?llo", "h[a-z]*o",
		"a[*]", "a[?]", "a[[]", "a[]]", "a\\*", "a\\?", "a\\[", "a\\\\b", "a[\\]]", "a[\\-]b", "a[-]b",
		"a[", "a[b", "a[^", "a[^b", "a[b-", "a\\",
		"c:{*}", "c:{m:*}", "c:{m:1/*}", "c:*:3}", "ctm:*", "ctm:biz:{*}:paused", "ctm:ledger:*", "*{*}*",
		"*[/]*", "[^a]*", "[a-c]", "[!a]", "\x00*", "*\x00", "é", "?\xa9", "",
	}
)

// TestGlobMatchesRedis: KEYS and SCAN MATCH answer what redis-server
// answers for every pattern of the table (path.Match, which the store used
// before, stopped `*` at `/`, so `KEYS *` missed every key holding one).
func TestGlobMatchesRedis(t *testing.T) {
	real := startRedisRESP2(t)
	_, c := openTest(t, Options{Dir: t.TempDir()})
	ctx := t.Context()
	for _, cl := range []*redis.Client{real, c} {
		for _, k := range globKeys {
			must(t, cl.Set(ctx, k, "v", 0).Err())
		}
	}
	for _, pat := range globPatterns {
		want, err := real.Keys(ctx, pat).Result()
		must(t, err)
		got, err := c.Keys(ctx, pat).Result()
		must(t, err)
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("KEYS %q = %q; redis-server: %q", pat, got, want)
		}
		if pat == "" {
			continue // go-redis sends no MATCH for an empty pattern
		}
		scanned, _, err := c.Scan(ctx, 0, pat, 0).Result()
		must(t, err)
		slices.Sort(scanned)
		if !slices.Equal(scanned, want) {
			t.Errorf("SCAN 0 MATCH %q = %q; redis-server: %q", pat, scanned, want)
		}
	}
}

// TestGlobAbusivePattern: many stars against a long key end at once (the
// nesting bound and the early stop), as in Redis.
func TestGlobAbusivePattern(t *testing.T) {
	key := string(slices.Repeat([]byte("a"), 10000))
	pat := string(slices.Repeat([]byte("*a"), 2000)) + "b"
	if globMatch(pat, key) {
		t.Errorf("globMatch(%d stars, %d bytes) = true; want false", 2000, len(key))
	}
}
