package test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// faultBusiness is one advertiser account of a channel. Phone is the
// WhatsApp phone_number_id that also names the WABA in conversions.
type faultBusiness struct{ ID, Phone string }

// faultBusinesses are the accounts conversations rotate over. The second
// Messenger page has its own token in faultDatasetsFile (the token-error
// scenario revokes it); the others resolve their datasets through the fake
// Dataset API.
var faultBusinesses = map[string][]faultBusiness{
	"whatsapp":  {{"104200000000001", "106500000000001"}, {"104200000000002", "106500000000002"}},
	"messenger": {{ID: "109800000000001"}, {ID: "109800000000002"}},
	"instagram": {{ID: "178400000000001"}, {ID: "178400000000002"}},
}

var faultChannels = []string{"whatsapp", "messenger", "instagram"}

// faultOwnTokenPage is the business with its own token, faultOwnToken.
const (
	faultOwnTokenPage = "109800000000002"
	faultOwnToken     = "fault-own-token-page2"
	faultDatasetsFile = `{"109800000000002": {"dataset_id": "900000000000002", "access_token_env": "FAULT_PAGE2_TOKEN"},
 "178400000000001": {"dataset_id": "900000000000003"}}`
)

// faultConv is one conversation: an ad click (the webhook) and the order
// system's conversion for it.
type faultConv struct {
	Channel string
	Biz     faultBusiness
	User    string // wa_id, PSID or IGSID
	Clid    string // ctwa_clid (WhatsApp)
	EventID string
	Name    string // event_name
	n       int64
}

var faultEventNames = []string{"Purchase", "LeadSubmitted", "InitiateCheckout", "AddToCart", "ViewContent", "OrderCreated", "OrderShipped"}

// conv makes a new conversation of channel with business biz (nil: the
// next business in turn), with ids unique to this rig.
func (r *faultRig) conv(channel string, biz *faultBusiness) faultConv {
	n := r.seq.Add(1)
	bs := faultBusinesses[channel]
	c := faultConv{Channel: channel, Biz: bs[int(n)%len(bs)], n: n,
		EventID: fmt.Sprintf("ev-%s-%07d", r.run, n), Name: faultEventNames[int(n)%len(faultEventNames)]}
	if biz != nil {
		c.Biz = *biz
	}
	run, _ := strconv.ParseUint(r.run, 16, 32)
	switch channel {
	case "whatsapp":
		c.User = fmt.Sprintf("1%08d%07d", run%1e8, n)
		c.Clid = fmt.Sprintf("ARA%s-%d-%x", r.run, n, r.trnd.Uint64())
	case "messenger":
		c.User = fmt.Sprintf("68%08d%06d", run%1e8, n)
	default:
		c.User = fmt.Sprintf("17%08d%06d", run%1e8, n)
	}
	return c
}

// convs makes n conversations of one channel and business, as one webhook
// delivery would carry (Meta batches).
func (r *faultRig) convs(n int, channel string, biz *faultBusiness) []faultConv {
	if biz == nil {
		bs := faultBusinesses[channel]
		b := bs[r.trnd.IntN(len(bs))]
		biz = &b
	}
	out := make([]faultConv, n)
	for i := range out {
		out[i] = r.conv(channel, biz)
	}
	return out
}

// faultWebhook is the signed-to-be delivery that tells ingest about the ad
// clicks of convs (same channel and business), clicked at t.
func faultWebhook(convs []faultConv, t time.Time) []byte {
	c0 := convs[0]
	var entry map[string]any
	if c0.Channel == "whatsapp" {
		var contacts, messages []any
		for _, c := range convs {
			contacts = append(contacts, map[string]any{"profile": map[string]any{"name": "Fault Tester"}, "wa_id": c.User})
			messages = append(messages, map[string]any{
				"from": c.User, "id": fmt.Sprintf("wamid.%s", c.EventID), "timestamp": strconv.FormatInt(t.Unix(), 10),
				"type": "text", "text": map[string]any{"body": "hello"},
				"referral": map[string]any{"source_url": "https://fb.me/fault", "source_id": "120212345678901234",
					"source_type": "ad", "headline": "Chat with us", "media_type": "image", "ctwa_clid": c.Clid},
			})
		}
		entry = map[string]any{"id": c0.Biz.ID, "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
			"messaging_product": "whatsapp",
			"metadata":          map[string]any{"display_phone_number": "15550001111", "phone_number_id": c0.Biz.Phone},
			"contacts":          contacts, "messages": messages,
		}}}}
	} else {
		var messaging []any
		for _, c := range convs {
			messaging = append(messaging, map[string]any{
				"sender": map[string]any{"id": c.User}, "recipient": map[string]any{"id": c.Biz.ID},
				"timestamp": t.UnixMilli(),
				"message": map[string]any{"mid": "m_" + c.EventID, "text": "is it available?",
					"referral": map[string]any{"ref": "fault", "ad_id": "120210000000000111", "source": "ADS", "type": "OPEN_THREAD"}},
			})
		}
		entry = map[string]any{"id": c0.Biz.ID, "time": t.UnixMilli(), "messaging": messaging}
	}
	object := map[string]string{"whatsapp": "whatsapp_business_account", "messenger": "page", "instagram": "instagram"}[c0.Channel]
	b, err := json.Marshal(map[string]any{"object": object, "entry": []any{entry}})
	if err != nil {
		panic(err) // maps of strings and numbers always marshal
	}
	return b
}

// conversion is the order system's message for c at t. WhatsApp
// conversions name the WABA or, every other one, the phone_number_id.
func (c faultConv) conversion(t time.Time) []byte {
	return c.conversionNaming(t, c.n%2 == 0)
}

// conversionNaming is conversion with the WhatsApp business named by its
// phone_number_id (byPhone) or its WABA id.
func (c faultConv) conversionNaming(t time.Time, byPhone bool) []byte {
	business := c.Biz.ID
	if c.Channel == "whatsapp" && byPhone {
		business = c.Biz.Phone
	}
	m := map[string]any{"event_id": c.EventID, "event_name": c.Name, "event_time": t.Unix(),
		"channel": c.Channel, "business_id": business, "user_id": c.User}
	if c.Name == "Purchase" {
		m["custom_data"] = map[string]any{"currency": "USD", "value": float64(c.n%1000) + 0.99, "order_id": "o-" + c.EventID}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// subject is where c's conversion is published.
func (c faultConv) subject() string { return "conversions." + c.Channel }

// faultStream is steady traffic: conversations in deliveries of Batch, each
// delivery posted once (a non-200 is redelivered in the background, as
// Meta would) and then one conversion per conversation published,
// PerSecond conversions a second. Its counters are safe to read meanwhile.
type faultStream struct {
	N, Batch, PerSecond int
	// Fate, when set, is called before each conversion is published and
	// returns the dead-letter reason it must end with ("" = sent once).
	Fate func(faultConv) string
	// DupEvery > 0 publishes every DupEvery-th conversion a second time
	// with another Nats-Msg-Id (an order system's duplicate).
	DupEvery int
	// LateWebhookEvery > 0 posts every LateWebhookEvery-th delivery only
	// after its conversions were published (the conversions race it).
	LateWebhookEvery int

	published   atomic.Int64 // conversions published so far
	mu          sync.Mutex
	firstStatus map[int]int // status of each delivery's first post
	retried     int         // deliveries that needed redelivery
}

// statuses returns a copy of the first-attempt status counts.
func (s *faultStream) statuses() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int]int{}
	for k, v := range s.firstStatus {
		out[k] = v
	}
	return out
}

// run sends the traffic and expects every conversion sent once (or what
// Fate says). It returns after the last publish and the last redelivery,
// with the first error.
func (s *faultStream) run(r *faultRig) error {
	if s.Batch <= 0 {
		s.Batch = 10
	}
	s.mu.Lock()
	s.firstStatus = map[int]int{}
	s.mu.Unlock()
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	fail := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if first == nil {
			first = err
		}
	}
	deliver := func(body []byte) {
		code := r.post(body)
		s.mu.Lock()
		s.firstStatus[code]++
		if code != 200 {
			s.retried++
		}
		s.mu.Unlock()
		if code != 200 {
			wg.Go(func() {
				if err := r.redeliver(body, 90*time.Second); err != nil {
					fail(err)
				}
			})
		}
	}
	begin := time.Now()
	for done, i := 0, 0; done < s.N; i++ {
		convs := r.convs(min(s.Batch, s.N-done), faultChannels[i%len(faultChannels)], nil)
		body := faultWebhook(convs, time.Now())
		late := s.LateWebhookEvery > 0 && i%s.LateWebhookEvery == s.LateWebhookEvery-1
		if !late {
			deliver(body)
		}
		for _, c := range convs {
			if err := s.publish(r, c); err != nil {
				fail(err)
				wg.Wait()
				return first
			}
			done++
			s.published.Add(1)
		}
		if late {
			deliver(body)
		}
		if s.PerSecond > 0 { // pace: the traffic is steady, not synchronised
			if ahead := time.Duration(done)*time.Second/time.Duration(s.PerSecond) - time.Since(begin); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	wg.Wait()
	return first
}

// publish publishes c's conversion (and its duplicate, see DupEvery).
func (s *faultStream) publish(r *faultRig, c faultConv) error {
	w := faultWant{EventID: c.EventID, MsgIDs: []string{c.EventID}}
	if s.Fate != nil {
		w.Reason = s.Fate(c)
	}
	r.expect(w)
	if err := r.publish(c.subject(), c.EventID, c.conversion(time.Now())); err != nil {
		return fmt.Errorf("publish %s: %w", c.EventID, err)
	}
	if s.DupEvery > 0 && c.n%int64(s.DupEvery) == 0 {
		r.expect(faultWant{EventID: c.EventID, MsgIDs: []string{c.EventID + "#dup"}})
		if err := r.publish(c.subject(), c.EventID+"#dup", c.conversion(time.Now())); err != nil {
			return fmt.Errorf("publish %s#dup: %w", c.EventID, err)
		}
	}
	return nil
}
