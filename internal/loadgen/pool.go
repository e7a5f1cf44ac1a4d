package loadgen

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// Mix is the share of each channel in generated traffic, as integer weights.
type Mix struct {
	channels []string
	weights  []int
	total    int
}

// DefaultMix is WhatsApp-heavy, as click-to-WhatsApp ads dominate.
const DefaultMix = "whatsapp=6,messenger=3,instagram=1"

// ParseMix reads "whatsapp=6,messenger=3,instagram=1" (channels may be left
// out; weights are non-negative and at least one is positive).
func ParseMix(s string) (Mix, error) {
	var m Mix
	for part := range strings.SplitSeq(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(w)
		switch {
		case !ok || err != nil || n < 0:
			return Mix{}, fmt.Errorf("mix: %q is not channel=weight", part)
		case name != chWhatsApp && name != chMessenger && name != chInstagram:
			return Mix{}, fmt.Errorf("mix: unknown channel %q", name)
		}
		m.channels = append(m.channels, name)
		m.weights = append(m.weights, n)
		m.total += n
	}
	if m.total == 0 {
		return Mix{}, fmt.Errorf("mix: %q has no positive weight", s)
	}
	return m, nil
}

// Channel returns the channel of sequence number seq: the weights are laid
// out in a repeating cycle, so any window of total consecutive numbers holds
// exactly the configured shares.
func (m Mix) Channel(seq uint64) string {
	r := int(seq % uint64(m.total))
	for i, w := range m.weights {
		if r < w {
			return m.channels[i]
		}
		r -= w
	}
	panic("loadgen: mix weights do not add up") // unreachable for a parsed Mix
}

// Signed is one signed webhook delivery ready to send.
type Signed struct {
	Channel   string
	Body      []byte
	Signature string // the X-Hub-Signature-256 value
}

// Pool is a set of pre-signed bodies, built before a timed run so that the
// generator spends no CPU on JSON or HMAC while measuring. Next hands them out
// in order, and wraps around (sending duplicates) only when exhausted.
type Pool struct {
	items []Signed
	next  atomic.Uint64
}

// NewPool signs n bodies with secret, sequence numbers first..first+n-1,
// channels as mix says, clicked at now.
func NewPool(g *BodyGen, mix Mix, secret []byte, first uint64, n int, now time.Time) *Pool {
	p := &Pool{items: make([]Signed, n)}
	for i := range p.items {
		seq := first + uint64(i)
		ch := mix.Channel(seq)
		body := g.Append(make([]byte, 0, 1024), ch, seq, now)
		p.items[i] = Signed{Channel: ch, Body: body, Signature: webhook.Sign(body, secret)}
	}
	return p
}

// Len returns the number of bodies in the pool.
func (p *Pool) Len() int { return len(p.items) }

// Item returns body i.
func (p *Pool) Item(i int) *Signed { return &p.items[i] }

// Next returns the index of the next body to send.
func (p *Pool) Next() int { return int((p.next.Add(1) - 1) % uint64(len(p.items))) }

// Used returns how many bodies were handed out; more than Len means some
// were sent twice.
func (p *Pool) Used() uint64 { return p.next.Load() }

// Rewind starts handing bodies out from the first again.
func (p *Pool) Rewind() { p.next.Store(0) }
