package embedstore

// globMatch reports whether s matches the glob pattern as Redis's KEYS and
// SCAN MATCH match it (stringmatchlen in Redis's util.c): `*` any run of
// bytes, `/` included (path.Match, used before, stops at `/`); `?` one
// byte; `[abc]`, `[a-z]` and `[^...]` one byte of (or not of) a set; `\`
// makes the next byte literal, inside a set too. A set left open runs to
// the end of the pattern, and `*` needs at least one byte when it is all
// that is left of the pattern but the key is empty, as in Redis. Matching
// is byte-wise and case-sensitive.
func globMatch(pattern, s string) bool {
	skipLonger := false
	return globMatchAt(pattern, s, &skipLonger, 0)
}

// globMaxNesting bounds the recursion on `*`, as Redis does.
const globMaxNesting = 1000

// at is pattern[i], or 0 past its end: C's read of the terminating NUL,
// which Redis's algorithm relies on.
func at(b string, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

// globMatchAt is Redis's algorithm with indexes for pointers (p into
// pattern, i into s). skipLonger is shared by the whole match: once the
// rest of the pattern after a `*` matched nowhere in the rest of s, no
// earlier `*` can make it match by taking more, so the search stops.
func globMatchAt(pattern, s string, skipLonger *bool, nesting int) bool {
	if nesting > globMaxNesting {
		return false
	}
	p, i := 0, 0
	for p < len(pattern) && i < len(s) {
		switch pattern[p] {
		case '*':
			for at(pattern, p+1) == '*' {
				p++
			}
			if p == len(pattern)-1 {
				return true
			}
			for ; i < len(s); i++ {
				if globMatchAt(pattern[p+1:], s[i:], skipLonger, nesting+1) {
					return true
				}
				if *skipLonger {
					return false
				}
			}
			*skipLonger = true
			return false
		case '?':
			i++
		case '[':
			p++
			not := at(pattern, p) == '^'
			if not {
				p++
			}
			if matchSet(pattern, &p, s[i]) == not {
				return false
			}
			i++
		case '\\':
			if len(pattern)-p >= 2 {
				p++
			}
			fallthrough
		default:
			if pattern[p] != s[i] {
				return false
			}
			i++
		}
		p++
		if i == len(s) {
			for at(pattern, p) == '*' {
				p++
			}
			break
		}
	}
	return p >= len(pattern) && i == len(s)
}

// matchSet reports whether c is in the set that starts at *p (after `[`
// and any `^`), leaving *p on its closing `]` (or on the pattern's last
// byte when the set is not closed).
func matchSet(pattern string, p *int, c byte) bool {
	match := false
	for {
		switch {
		case at(pattern, *p) == '\\' && len(pattern)-*p >= 2:
			*p++
			if pattern[*p] == c {
				match = true
			}
		case at(pattern, *p) == ']':
			return match
		case *p >= len(pattern):
			*p-- // an unclosed set ends the pattern
			return match
		case len(pattern)-*p >= 3 && pattern[*p+1] == '-':
			lo, hi := pattern[*p], pattern[*p+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			*p += 2
			if lo <= c && c <= hi {
				match = true
			}
		case pattern[*p] == c:
			match = true
		}
		*p++
	}
}
