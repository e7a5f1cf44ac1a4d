package loadgen

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// The bodies are the compact JSON Meta sends (the shapes of
// pkg/webhook/testdata), with per-request ids filled in. Each holds exactly
// one ad click, so each stored webhook is one context upsert.
const (
	whatsAppTemplate = `{"object":"whatsapp_business_account","entry":[{"id":"${business}","changes":[{"value":` +
		`{"messaging_product":"whatsapp","metadata":{"display_phone_number":"${display}","phone_number_id":"${phone_id}"},` +
		`"contacts":[{"profile":{"name":"Kerry Fisher"},"wa_id":"${user}"}],"messages":[{"from":"${user}",` +
		`"id":"wamid.${msg_id}","timestamp":"${ts}","type":"text","text":{"body":"Can I learn more about your business?"},` +
		`"referral":{"source_url":"https://fb.me/3cr4Wqqkv","source_id":"${ad_id}","source_type":"ad",` +
		`"body":"Free shipping this week","headline":"Chat with us","media_type":"image",` +
		`"image_url":"https://scontent.example/ad.jpg","ctwa_clid":"${clid}"}}]},"field":"messages"}]}]}`
	messengerTemplate = `{"object":"page","entry":[{"id":"${business}","time":${ts_ms},"messaging":[{"sender":{"id":"${user}"},` +
		`"recipient":{"id":"${business}"},"timestamp":${ts_ms},"message":{"mid":"m_${msg_id}","text":"Is this still available?",` +
		`"referral":{"ad_id":"${ad_id}","source":"ADS","type":"OPEN_THREAD","ads_context_data":{"ad_title":"Spring sale",` +
		`"photo_url":"https://scontent.example/p.jpg","post_id":"${business}_555"}}}}]}]}`
	instagramTemplate = `{"object":"instagram","entry":[{"time":${ts_ms},"id":"${business}","messaging":[{"sender":{"id":"${user}"},` +
		`"recipient":{"id":"${business}"},"timestamp":${ts_ms},"message":{"mid":"aWdfZAG1faXRlbToxOk${msg_id}",` +
		`"text":"How much is it?","referral":{"ref":"ig_promo","ad_id":"${ad_id}","source":"ADS","type":"OPEN_THREAD",` +
		`"ads_context_data":{"ad_title":"New drop","photo_url":"https://scontent.example/ig.jpg"}}}}]}]}`
)

// clidLen is the length of a generated ctwa_clid; Meta's are about 100
// characters of base64url.
const clidLen = 97

// template is a body split at its ${placeholders}.
type template struct {
	lits   []string // lits[i] comes before fields[i]; one more lit than fields
	fields []string
}

// parseTemplate splits s at its ${name} placeholders.
func parseTemplate(s string) template {
	var t template
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			t.lits = append(t.lits, s)
			return t
		}
		j := strings.IndexByte(s[i:], '}')
		t.lits = append(t.lits, s[:i])
		t.fields = append(t.fields, s[i+2:i+j])
		s = s[i+j+1:]
	}
}

// BodyGen makes webhook bodies with ids that are unique per sequence number
// within one generator: wa_id, PSID or IGSID, message id and ctwa_clid all
// derive from it. Business ids cycle through a few per channel, as a partner
// serving several clients would see. It is safe for concurrent use.
type BodyGen struct {
	base       uint64 // random per generator, so two runs rarely collide
	businesses int
	filler     string // random tail that makes clids ctwa_clid-sized
	templates  map[string]template
}

// NewBodyGen returns a generator whose bodies spread over businesses
// business ids per channel (at least 1).
func NewBodyGen(businesses int) *BodyGen {
	var f [clidLen]byte
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range f {
		f[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return &BodyGen{
		base:       rand.Uint64N(1e9) * 8,
		businesses: max(businesses, 1),
		filler:     string(f[:]),
		templates: map[string]template{
			chWhatsApp:  parseTemplate(whatsAppTemplate),
			chMessenger: parseTemplate(messengerTemplate),
			chInstagram: parseTemplate(instagramTemplate),
		},
	}
}

// Channel names as the webhook package spells them.
const (
	chWhatsApp  = string(webhook.WhatsApp)
	chMessenger = string(webhook.Messenger)
	chInstagram = string(webhook.Instagram)
)

// Business returns the business id of channel ch for sequence number seq,
// and for WhatsApp the business phone number id.
func (g *BodyGen) Business(ch string, seq uint64) (business, phoneID string) {
	// Hashing spreads businesses independently of the channel mix, whose
	// cycle a plain modulo would line up with.
	b := (seq * 0x9E3779B97F4A7C15 >> 32) % uint64(g.businesses)
	switch ch {
	case chWhatsApp:
		return "1022901293" + pad(b, 5), "1065403522" + pad(b, 5)
	case chMessenger:
		return "1098765432" + pad(b, 5), ""
	default:
		return "1784140555" + pad(b, 7), ""
	}
}

// User returns the user id (wa_id, PSID or IGSID) of sequence number seq.
func (g *BodyGen) User(ch string, seq uint64) string {
	n := g.base + seq
	switch ch {
	case chWhatsApp:
		return "1" + pad(n%1e10, 10) // a NANP-like phone number
	case chMessenger:
		return "6" + pad(n%1e15, 15)
	default:
		return "1" + pad(n%1e15, 15)
	}
}

// ClickID returns the ctwa_clid of sequence number seq.
func (g *BodyGen) ClickID(seq uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], g.base+seq)
	id := "ARA" + base64.RawURLEncoding.EncodeToString(b[:])
	return id + g.filler[:clidLen-len(id)]
}

// AdID returns the ad id of sequence number seq (a hundred ads in rotation).
func (g *BodyGen) AdID(seq uint64) string { return "1202123456789" + pad(seq%100, 5) }

// Append appends the body of channel ch for sequence number seq, clicked at
// now, to dst.
func (g *BodyGen) Append(dst []byte, ch string, seq uint64, now time.Time) []byte {
	t, ok := g.templates[ch]
	if !ok {
		panic(fmt.Sprintf("loadgen: unknown channel %q", ch)) // programmer error
	}
	business, phoneID := g.Business(ch, seq)
	user := g.User(ch, seq)
	for i, f := range t.fields {
		dst = append(dst, t.lits[i]...)
		switch f {
		case "business":
			dst = append(dst, business...)
		case "phone_id":
			dst = append(dst, phoneID...)
		case "display":
			dst = append(dst, "1555"+phoneID[len(phoneID)-7:]...)
		case "user":
			dst = append(dst, user...)
		case "msg_id":
			dst = append(dst, "HBgL"...)
			dst = strconv.AppendUint(dst, g.base+seq, 36)
		case "ts":
			dst = strconv.AppendInt(dst, now.Unix(), 10)
		case "ts_ms":
			dst = strconv.AppendInt(dst, now.UnixMilli(), 10)
		case "ad_id":
			dst = append(dst, g.AdID(seq)...)
		case "clid":
			dst = append(dst, g.ClickID(seq)...)
		default:
			panic("loadgen: unknown placeholder " + f)
		}
	}
	return append(dst, t.lits[len(t.lits)-1]...)
}

// pad formats n in decimal, left-padded with zeros to width digits.
func pad(n uint64, width int) string {
	s := strconv.FormatUint(n, 10)
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}
