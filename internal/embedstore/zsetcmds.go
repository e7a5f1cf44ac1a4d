package embedstore

import (
	"math"
	"sort"
	"strconv"
	"strings"
)

// The sorted set commands, each called with the store's lock held; see
// commandTable. Replies follow Redis 7.0, including its error texts.

var (
	errNotFloat  = replyErr("ERR value is not a valid float")
	errScoreItem = replyErr("ERR min or max is not a float")
	errLexItem   = replyErr("ERR min or max not valid string range item")
)

func (s *Store) zsetOf(k string, now int64) (*object, any) {
	return s.objFor(k, kindZset, now, false)
}

func parseScore(b []byte) (float64, bool) {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		// strconv rejects the out-of-range values strtod saturates;
		// Redis takes them as ±inf.
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return 0, false
		}
	}
	return f, !math.IsNaN(f)
}

// cmdZAdd is ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member ...
func cmdZAdd(s *Store, a [][]byte, now int64) any {
	var nx, xx, gt, lt, ch, incr bool
	i := 2
opts:
	for ; i < len(a); i++ {
		switch strings.ToLower(string(a[i])) {
		case "nx":
			nx = true
		case "xx":
			xx = true
		case "gt":
			gt = true
		case "lt":
			lt = true
		case "ch":
			ch = true
		case "incr":
			incr = true
		default:
			break opts
		}
	}
	pairs := a[i:]
	switch {
	case len(pairs) == 0 || len(pairs)%2 != 0:
		return errSyntax
	case nx && xx:
		return replyErr("ERR XX and NX options at the same time are not compatible")
	case gt && lt || nx && (gt || lt):
		return replyErr("ERR GT, LT, and/or NX options at the same time are not compatible")
	case incr && len(pairs) != 2:
		return replyErr("ERR INCR option supports a single increment-element pair")
	}
	scores := make([]float64, len(pairs)/2)
	for j := range scores {
		f, ok := parseScore(pairs[2*j])
		if !ok {
			return errNotFloat
		}
		scores[j] = f
	}
	k := string(a[1])
	o, err := s.objFor(k, kindZset, now, false)
	if err != nil {
		return err
	}
	var added, changed int64
	var result any
	for j, score := range scores {
		m := string(pairs[2*j+1])
		var old float64
		had := false
		if o != nil {
			old, had = o.zset.scores[m]
		}
		if nx && had || xx && !had {
			continue
		}
		if incr {
			score += old
			if math.IsNaN(score) {
				return replyErr("ERR resulting score is not a number (NaN)")
			}
		}
		if had && (gt && score <= old || lt && score >= old) {
			continue
		}
		result = formatScore(score)
		if had && score == old {
			continue
		}
		if o == nil {
			o = s.newObj(k, kindZset)
		}
		s.putZMember(k, o, m, score, now)
		if had {
			changed++
		} else {
			added++
		}
	}
	if incr {
		return result // nil when NX, XX, GT or LT stopped it
	}
	if ch {
		return added + changed
	}
	return added
}

func cmdZIncrBy(s *Store, a [][]byte, now int64) any {
	return cmdZAdd(s, [][]byte{a[0], a[1], []byte("incr"), a[2], a[3]}, now)
}

func cmdZRem(s *Store, a [][]byte, now int64) any {
	k := string(a[1])
	o, err := s.zsetOf(k, now)
	if err != nil || o == nil {
		return zeroOr(err)
	}
	n := int64(0)
	for _, m := range a[2:] {
		if o.len() == 0 {
			break
		}
		if s.delZMember(k, o, string(m), now) {
			n++
		}
	}
	return n
}

func cmdZCard(s *Store, a [][]byte, now int64) any {
	o, err := s.zsetOf(string(a[1]), now)
	if err != nil || o == nil {
		return zeroOr(err)
	}
	return int64(o.len())
}

func cmdZScore(s *Store, a [][]byte, now int64) any {
	o, err := s.zsetOf(string(a[1]), now)
	if err != nil || o == nil {
		return err
	}
	if f, ok := o.zset.scores[string(a[2])]; ok {
		return formatScore(f)
	}
	return nil
}

func cmdZMScore(s *Store, a [][]byte, now int64) any {
	o, err := s.zsetOf(string(a[1]), now)
	if err != nil {
		return err
	}
	out := make([]any, len(a)-2)
	if o != nil {
		for i, m := range a[2:] {
			if f, ok := o.zset.scores[string(m)]; ok {
				out[i] = formatScore(f)
			}
		}
	}
	return out
}

func cmdZRank(rev bool) func(*Store, [][]byte, int64) any {
	return func(s *Store, a [][]byte, now int64) any {
		o, err := s.zsetOf(string(a[1]), now)
		if err != nil || o == nil {
			return err
		}
		m := string(a[2])
		f, ok := o.zset.scores[m]
		if !ok {
			return nil
		}
		r := int64(o.zset.rank(zmember{f, m}))
		if rev {
			r = int64(o.len()) - 1 - r
		}
		return r
	}
}

// scoreBound is one end of a score range: "(" makes it exclusive.
type scoreBound struct {
	v    float64
	excl bool
}

func parseScoreBound(b []byte) (scoreBound, bool) {
	var sb scoreBound
	if len(b) > 0 && b[0] == '(' {
		sb.excl, b = true, b[1:]
	}
	f, ok := parseScore(b)
	sb.v = f
	return sb, ok
}

func (b scoreBound) belowOrAt(f float64) bool { // f is within max bound b
	return f < b.v || !b.excl && f == b.v
}

func (b scoreBound) aboveOrAt(f float64) bool { // f is within min bound b
	return f > b.v || !b.excl && f == b.v
}

// lexBound is one end of a lex range: "-", "+", "[x" or "(x".
type lexBound struct {
	v        string
	excl     bool
	neg, pos bool // - or +
}

func parseLexBound(b []byte) (lexBound, bool) {
	switch {
	case len(b) == 1 && b[0] == '-':
		return lexBound{neg: true}, true
	case len(b) == 1 && b[0] == '+':
		return lexBound{pos: true}, true
	case len(b) > 0 && b[0] == '(':
		return lexBound{v: string(b[1:]), excl: true}, true
	case len(b) > 0 && b[0] == '[':
		return lexBound{v: string(b[1:])}, true
	}
	return lexBound{}, false
}

func (b lexBound) aboveOrAt(m string) bool { // m is within min bound b
	switch {
	case b.neg:
		return true
	case b.pos:
		return false
	}
	return m > b.v || !b.excl && m == b.v
}

func (b lexBound) belowOrAt(m string) bool { // m is within max bound b
	switch {
	case b.pos:
		return true
	case b.neg:
		return false
	}
	return m < b.v || !b.excl && m == b.v
}

// zrangeSpec is a parsed ZRANGE (or ZRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGE…).
type zrangeSpec struct {
	by             byte // 'r' rank, 's' score, 'l' lex
	rev            bool
	withScores     bool
	limited        bool
	offset, count  int64
	start, stop    int64
	smin, smax     scoreBound
	lmin, lmax     lexBound
	minArg, maxArg []byte
}

// cmdZRange is ZRANGE key min max [BYSCORE|BYLEX] [REV] [LIMIT o c]
// [WITHSCORES] and, through by and rev, its older forms.
func cmdZRange(by byte, rev bool) func(*Store, [][]byte, int64) any {
	return func(s *Store, a [][]byte, now int64) any {
		sp := zrangeSpec{by: by, rev: rev, count: -1}
		modern := by == 0
		if modern {
			sp.by = 'r'
		}
		for i := 4; i < len(a); i++ {
			switch opt := strings.ToLower(string(a[i])); {
			case opt == "withscores":
				sp.withScores = true
			case opt == "limit" && i+2 < len(a):
				o, err1 := strconv.ParseInt(string(a[i+1]), 10, 64)
				c, err2 := strconv.ParseInt(string(a[i+2]), 10, 64)
				if err1 != nil || err2 != nil {
					return errNotInt
				}
				sp.limited, sp.offset, sp.count = true, o, c
				i += 2
			case modern && opt == "byscore":
				sp.by = 's'
			case modern && opt == "bylex":
				sp.by = 'l'
			case modern && opt == "rev":
				sp.rev = true
			default:
				return errSyntax
			}
		}
		switch {
		case sp.limited && sp.by == 'r':
			return replyErr("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
		case sp.withScores && sp.by == 'l':
			return replyErr("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
		}
		lo, hi := a[2], a[3]
		if sp.rev && sp.by != 'r' {
			lo, hi = hi, lo // REV takes max then min
		}
		var ok1, ok2 bool
		switch sp.by {
		case 'r':
			var err1, err2 error
			sp.start, err1 = strconv.ParseInt(string(a[2]), 10, 64)
			sp.stop, err2 = strconv.ParseInt(string(a[3]), 10, 64)
			if err1 != nil || err2 != nil {
				return errNotInt
			}
		case 's':
			sp.smin, ok1 = parseScoreBound(lo)
			sp.smax, ok2 = parseScoreBound(hi)
			if !ok1 || !ok2 {
				return errScoreItem
			}
		case 'l':
			sp.lmin, ok1 = parseLexBound(lo)
			sp.lmax, ok2 = parseLexBound(hi)
			if !ok1 || !ok2 {
				return errLexItem
			}
		}
		o, err := s.zsetOf(string(a[1]), now)
		if err != nil {
			return err
		}
		out := []any{}
		if o == nil {
			return out
		}
		for _, m := range o.zset.pick(&sp) {
			out = append(out, m.member)
			if sp.withScores {
				out = append(out, formatScore(m.score))
			}
		}
		return out
	}
}

// pick returns the members sp selects, in reply order.
func (z *zset) pick(sp *zrangeSpec) []zmember {
	n := len(z.order)
	if sp.by == 'r' {
		lo, hi, ok := rankRange(sp.start, sp.stop, n)
		if !ok {
			return nil
		}
		if !sp.rev {
			return z.order[lo : hi+1]
		}
		out := make([]zmember, 0, hi-lo+1)
		for i := n - 1 - lo; i >= n-1-hi; i-- {
			out = append(out, z.order[i])
		}
		return out
	}
	in := func(m zmember) bool {
		if sp.by == 's' {
			return sp.smin.aboveOrAt(m.score) && sp.smax.belowOrAt(m.score)
		}
		return sp.lmin.aboveOrAt(m.member) && sp.lmax.belowOrAt(m.member)
	}
	// The first member past the lower end, found by binary search (a lex
	// range assumes, as Redis does, that all scores are equal).
	first := sort.Search(n, func(i int) bool {
		if sp.by == 's' {
			return sp.smin.aboveOrAt(z.order[i].score)
		}
		return sp.lmin.aboveOrAt(z.order[i].member)
	})
	var out []zmember
	skip := sp.offset
	if skip < 0 {
		return nil
	}
	take := func(m zmember) bool {
		if skip > 0 {
			skip--
			return true
		}
		if sp.count >= 0 && int64(len(out)) >= sp.count {
			return false
		}
		out = append(out, m)
		return true
	}
	if !sp.rev {
		for i := first; i < n && in(z.order[i]); i++ {
			if !take(z.order[i]) {
				break
			}
		}
		return out
	}
	last := sort.Search(n, func(i int) bool {
		if sp.by == 's' {
			return !sp.smax.belowOrAt(z.order[i].score)
		}
		return !sp.lmax.belowOrAt(z.order[i].member)
	}) - 1
	for i := last; i >= 0 && in(z.order[i]); i-- {
		if !take(z.order[i]) {
			break
		}
	}
	return out
}

// rankRange clamps ZRANGE's start and stop (negative: from the end) to
// [0, n); ok is false when nothing is in range.
func rankRange(start, stop int64, n int) (int, int, bool) {
	l := int64(n)
	if start < 0 {
		start += l
	}
	if stop < 0 {
		stop += l
	}
	start = max(start, 0)
	if start > stop || start >= l {
		return 0, 0, false
	}
	stop = min(stop, l-1)
	return int(start), int(stop), true
}

func cmdZCount(s *Store, a [][]byte, now int64) any {
	lo, ok1 := parseScoreBound(a[2])
	hi, ok2 := parseScoreBound(a[3])
	if !ok1 || !ok2 {
		return errScoreItem
	}
	o, err := s.zsetOf(string(a[1]), now)
	if err != nil || o == nil {
		return zeroOr(err)
	}
	return int64(len(o.zset.pick(&zrangeSpec{by: 's', smin: lo, smax: hi, count: -1})))
}

func cmdZLexCount(s *Store, a [][]byte, now int64) any {
	lo, ok1 := parseLexBound(a[2])
	hi, ok2 := parseLexBound(a[3])
	if !ok1 || !ok2 {
		return errLexItem
	}
	o, err := s.zsetOf(string(a[1]), now)
	if err != nil || o == nil {
		return zeroOr(err)
	}
	return int64(len(o.zset.pick(&zrangeSpec{by: 'l', lmin: lo, lmax: hi, count: -1})))
}

// cmdZRemRange is ZREMRANGEBYRANK and ZREMRANGEBYSCORE; each member
// removed is journaled on its own.
func cmdZRemRange(by byte) func(*Store, [][]byte, int64) any {
	return func(s *Store, a [][]byte, now int64) any {
		sp := zrangeSpec{by: by, count: -1}
		if by == 'r' {
			var err1, err2 error
			sp.start, err1 = strconv.ParseInt(string(a[2]), 10, 64)
			sp.stop, err2 = strconv.ParseInt(string(a[3]), 10, 64)
			if err1 != nil || err2 != nil {
				return errNotInt
			}
		} else {
			var ok1, ok2 bool
			sp.smin, ok1 = parseScoreBound(a[2])
			sp.smax, ok2 = parseScoreBound(a[3])
			if !ok1 || !ok2 {
				return errScoreItem
			}
		}
		k := string(a[1])
		o, err := s.zsetOf(k, now)
		if err != nil || o == nil {
			return zeroOr(err)
		}
		gone := o.zset.pick(&sp)
		names := make([]string, len(gone))
		for i, m := range gone {
			names[i] = m.member // gone aliases the order the removals change
		}
		for _, m := range names {
			s.delZMember(k, o, m, now)
		}
		return int64(len(names))
	}
}
