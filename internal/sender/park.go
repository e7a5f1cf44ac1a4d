package sender

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/jsfetch"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

// Parking. A business paused after a token error can stay paused for hours.
// Handed back with a delay, its messages would count against the consumer's
// MaxAckPending all that time, and once that is full JetStream delivers
// nothing more, to any business. So the messages of a paused business are
// parked: copied to stream PARKED (subject parked.<business>) and acked.
//
// The pause is shared through Redis, since any sender may fetch a
// business's messages: a token error sets the business's pause key (for
// PAUSE_INTERVAL) and drops its ok key; an accepted request sets its ok
// key. Each sender's unpark loop looks at the businesses with parked
// messages: while one is paused, its messages stay; when it is known to
// work (ok), they go back to their original subject; otherwise (the pause
// ran out, nothing was sent since) a probe of a few goes back, one sender
// at a time, and the rest waits for its outcome. So a still-broken token
// costs a few messages a PAUSE_INTERVAL, not a flood. Unparked copies carry
// a Nats-Msg-Id of their own, and the ledger keeps any event from being
// sent twice whatever is published again.
const (
	StreamParked  = "PARKED"
	SubjectParked = "parked.>"

	unparkProbe = 10     // messages a probe sends back
	unparkMax   = 10_000 // messages one sender moves back for one business a round
)

// parkSubject is the PARKED subject of business. Ids that are not plain
// subject tokens (NATS forbids '.', '*', '>' and spaces in one) are hex.
func parkSubject(business string) string {
	for i := 0; i < len(business); i++ {
		c := business[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-') {
			return "parked._" + hex.EncodeToString([]byte(business))
		}
	}
	return "parked." + business
}

// parkedBusiness is the business of a PARKED subject ("" if none).
func parkedBusiness(subject string) string {
	tok, ok := strings.CutPrefix(subject, "parked.")
	if !ok || tok == "" {
		return ""
	}
	if h, ok := strings.CutPrefix(tok, "_"); ok {
		b, err := hex.DecodeString(h)
		if err != nil {
			return ""
		}
		return string(b)
	}
	return tok
}

// parkMsg is the parked copy of it: its data, and in the headers what
// unparking needs to publish it back as it was (the dead-letter headers).
func parkMsg(it *item, business string) *nats.Msg {
	m := nats.NewMsg(parkSubject(business))
	m.Data = it.msg.Data()
	h := m.Header
	// Parked again after a lost ack, the same message is dropped as a duplicate.
	h.Set(jetstream.MsgIDHeader, "park-"+strconv.FormatUint(it.seq, 10))
	h.Set(HeaderSubject, it.msg.Subject())
	h.Set(HeaderPublished, it.published.UTC().Format(time.RFC3339Nano))
	if it.conv.EventID != "" {
		h.Set(HeaderEventID, headerValue(it.conv.EventID))
	}
	if id := it.msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
		h.Set(HeaderMsgID, id)
	}
	return m
}

// pauseKey, okKey, probeKey and unparkKey hold a business's shared state in
// Redis: paused (after a token error), known to work (after an accepted
// request), a probe under way, and which sender is moving its messages.
func pauseKey(business string) string  { return "ctm:biz:{" + business + "}:paused" }
func okKey(business string) string     { return "ctm:biz:{" + business + "}:ok" }
func probeKey(business string) string  { return "ctm:biz:{" + business + "}:probe" }
func unparkKey(business string) string { return "ctm:biz:{" + business + "}:unpark" }

// PauseRecord is the value of a business's shared pause key: when the
// pause began and Meta's error that caused it (its message holds no token:
// capi scrubs it), for the admin API's health. An older sender wrote "1"
// (paused, why unknown).
type PauseRecord struct {
	Since   int64  `json:"since"` // Unix milliseconds
	Code    int    `json:"code"`
	Subcode int    `json:"subcode"`
	Class   string `json:"class"` // capi.Class's name: setup_fault
	Message string `json:"message"`
	// Fix says what to do (capi.ErrorTable's reason for the class).
	Fix string `json:"fix,omitempty"`
	// Version is GRAPH_API_VERSION of the sender that paused the business
	// for a deprecated version (code 2635): a sender started with another
	// version ends such a pause at once (unparkRound).
	Version string `json:"version,omitempty"`
}

// pauseRecordMessageMax bounds the message kept in a pause record.
const pauseRecordMessageMax = 300

// newPauseRecord describes the pause err caused at now, to a sender
// calling Graph API version.
func newPauseRecord(err error, now time.Time, version string) PauseRecord {
	r := PauseRecord{Since: now.UnixMilli(), Class: capi.SetupFault.String()}
	var ae *capi.APIError
	switch {
	case errors.As(err, &ae):
		r.Code, r.Subcode, r.Message, r.Fix = ae.Code, ae.Subcode, ae.Message, ae.Rule().Why
		if r.Message == "" {
			r.Message = fmt.Sprintf("HTTP status %d", ae.Status)
		}
		if ae.Code == capi.CodeDeprecatedVersion {
			r.Version = version
		}
	case errors.Is(err, capi.ErrNoToken):
		r.Message = "no access token: set the business's access_token in the registry or CAPI_ACCESS_TOKEN"
	default:
		r.Message = err.Error()
	}
	if len(r.Message) > pauseRecordMessageMax {
		cut := pauseRecordMessageMax
		for cut > 0 && !utf8.RuneStart(r.Message[cut]) {
			cut-- // not inside a character
		}
		r.Message = r.Message[:cut]
	}
	return r
}

// ParsePauseRecord reads a shared pause key's value; ok is false for the
// older "1" (or anything unreadable), which still means paused.
func ParsePauseRecord(v string) (r PauseRecord, ok bool) {
	return r, json.Unmarshal([]byte(v), &r) == nil && r.Since > 0
}

// pauseScript stores a pause record (ARGV[1]) for ARGV[2] ms and drops the
// ok key; a pause already recorded keeps its record (its since and cause)
// and has its TTL extended. The two keys share the business's hash tag. It
// returns 1 when it began the pause (business.paused is told then), else 0.
var pauseScript = redis.NewScript(`
local old = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[2])
if old and string.sub(old, 1, 1) == '{' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

// sharedPause records for every sender that business is paused, and why
// (err).
func (s *Service) sharedPause(business string, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pr := newPauseRecord(cause, s.now(), s.cfg.GraphVersion)
	rec, _ := json.Marshal(pr)
	// Confirmed by REDIS_MIN_REPLICAS replicas: a pause lost in a failover
	// would have every sender try the business again.
	cmd, err := replicas.RunScript(ctx, s.rdb, pauseScript, []string{pauseKey(business), okKey(business)},
		string(rec), s.cfg.PauseInterval.Milliseconds())
	if err == nil {
		if began, _ := cmd.Int(); began == 1 {
			s.notifyPaused(ctx, business, pr)
		}
	}
	if err != nil {
		// Only parking is less informed: other senders find out on their own.
		s.log.Warn("shared pause not stored", zap.String("business_id", business), zap.Error(err))
	}
	s.okAt.Delete(business)
}

// sharedOK records that business's requests are accepted, at most every
// okRefresh per sender.
func (s *Service) sharedOK(business string, now time.Time) {
	if at, ok := s.okAt.Load(business); ok && now.Sub(at.(time.Time)) < s.okRefresh() {
		return
	}
	s.okAt.Store(business, now)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.rdb.Set(ctx, okKey(business), "1", 4*s.okRefresh()).Err(); err != nil {
		s.okAt.Delete(business)
	}
}

func (s *Service) okRefresh() time.Duration { return max(s.cfg.PauseInterval, time.Second) }

// unparkEvery is how often the unpark loop looks at PARKED.
func (s *Service) unparkEvery() time.Duration {
	return min(max(s.cfg.PauseInterval/2, 100*time.Millisecond), 10*time.Second)
}

// unparkLoop moves parked messages back when their business works again.
// Its first round runs at once: a sender restarted with a fixed setting
// (GRAPH_API_VERSION) need not wait a round to send what waited for it.
func (s *Service) unparkLoop(ctx context.Context) {
	t := time.NewTicker(s.unparkEvery())
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		if err := s.unparkRound(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("unpark round failed; trying again", zap.Error(err))
		}
	}
}

// unparkRound looks once at every business with parked messages.
func (s *Service) unparkRound(ctx context.Context) error {
	stream, err := s.js.Stream(ctx, StreamParked)
	if err != nil {
		return err
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(SubjectParked))
	if err != nil {
		return err
	}
	s.m.parked.Set(float64(info.State.Msgs))
	if info.State.Msgs == 0 {
		return nil
	}
	var businesses []string
	for subj := range info.State.Subjects {
		if b := parkedBusiness(subj); b != "" {
			businesses = append(businesses, b)
		}
	}
	paused := make([]*redis.StringCmd, len(businesses))
	ok := make([]*redis.IntCmd, len(businesses))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, b := range businesses {
			paused[i] = p.Get(ctx, pauseKey(b))
			ok[i] = p.Exists(ctx, okKey(b))
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for i, b := range businesses {
		if he, err := s.datasets.held(ctx, b); err != nil || he != nil {
			// Disabled, or its secrets cannot be opened here: its messages
			// stay until that changes (or the registry answers again).
			if he != nil {
				s.noteHeld(b, he)
				if err := s.unparkExpired(ctx, stream, b); err != nil {
					return err
				}
			}
			continue
		}
		s.released(b)
		isPaused := paused[i].Err() == nil
		if isPaused && s.staleVersionPause(ctx, b, paused[i].Val()) {
			isPaused = false
		}
		if isPaused {
			// Parked longer than Meta's window, its events are too old to
			// send however long the pause lasts: back they go, to become
			// dead letters expired rather than age out of PARKED unseen.
			if err := s.unparkExpired(ctx, stream, b); err != nil {
				return err
			}
			continue
		}
		limit, probe := unparkMax, ok[i].Val() == 0
		if probe {
			// One probe a PAUSE_INTERVAL, among all senders.
			if got, err := s.rdb.SetNX(ctx, probeKey(b), "1", s.cfg.PauseInterval).Result(); err != nil || !got {
				continue
			}
			limit = unparkProbe
		}
		// One sender moves a business's messages at a time.
		if got, err := s.rdb.SetNX(ctx, unparkKey(b), s.instance, time.Minute).Result(); err != nil || !got {
			continue
		}
		n, err := s.unpark(ctx, stream, b, limit)
		s.rdb.Del(context.WithoutCancel(ctx), unparkKey(b))
		if n > 0 {
			s.log.Info("parked messages sent back", zap.String("business_id", b), zap.Int("count", n), zap.Bool("probe", probe))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// staleVersionPause ends business's pause (record rec) when Meta paused it
// for a deprecated GRAPH_API_VERSION (code 2635) that this sender does not
// call: the setting was changed and the senders restarted, so the parked
// messages may go (a probe first, as after any pause) without waiting out
// PAUSE_INTERVAL. It reports whether it ended the pause.
func (s *Service) staleVersionPause(ctx context.Context, business, rec string) bool {
	r, ok := ParsePauseRecord(rec)
	if !ok || r.Code != capi.CodeDeprecatedVersion || r.Version == "" || r.Version == s.cfg.GraphVersion {
		return false
	}
	// Only the record read is deleted: a pause stored since (this version
	// refused too) stays.
	if n, err := delIfEqual.Run(ctx, s.rdb, []string{pauseKey(business)}, rec).Int(); err != nil || n == 0 {
		return false
	}
	s.rdb.Del(ctx, probeKey(business))
	s.log.Info("pause for a deprecated Graph API version ended: this sender calls another one",
		zap.String("business_id", business), zap.String("paused_with", r.Version),
		zap.String("graph_api_version", s.cfg.GraphVersion))
	return true
}

// delIfEqual deletes KEYS[1] if it holds ARGV[1].
var delIfEqual = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// unparkExpired sends back the messages business parked before Meta's
// 7 days (whatever their event_time, they are older than that by now).
func (s *Service) unparkExpired(ctx context.Context, stream jetstream.Stream, business string) error {
	first, err := stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(parkSubject(business)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	cutoff := s.now().Add(-capi.MaxEventAge)
	if !first.Time.Before(cutoff) {
		return nil
	}
	n, err := s.unparkBefore(ctx, stream, business, unparkMax, cutoff)
	if n > 0 {
		s.log.Info("expired parked messages sent back", zap.String("business_id", business), zap.Int("count", n))
	}
	return err
}

// unpark publishes up to limit of business's parked messages back to their
// subjects, deleting each from PARKED once JetStream stored it again.
func (s *Service) unpark(ctx context.Context, stream jetstream.Stream, business string, limit int) (int, error) {
	return s.unparkBefore(ctx, stream, business, limit, time.Time{})
}

// unparkBefore is unpark of the messages parked before before (any, when zero).
func (s *Service) unparkBefore(ctx context.Context, stream jetstream.Stream, business string, limit int, before time.Time) (int, error) {
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{parkSubject(business)}})
	if err != nil {
		return 0, err
	}
	n := 0
	err = jsfetch.Pending(ctx, cons, limit, func(m jetstream.Msg, md *jetstream.MsgMetadata) (bool, error) {
		if !before.IsZero() && !md.Timestamp.Before(before) {
			return true, nil // the rest is newer
		}
		if err := republish(ctx, s.js, stream, m, md.Sequence.Stream, "unpark", ""); err != nil {
			return false, err
		}
		n++
		return false, nil
	})
	return n, err
}

// republish publishes a dead letter or a parked message (m, at seq in
// stream) back to its original subject and then deletes it from stream. Its
// Nats-Msg-Id is the original's with "-<kind>-<seq>", so doing it again
// after a crash between publish and delete is dropped by the CONVERSIONS
// duplicate window (and past it, the ledger still never sends an event
// twice).
func republish(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, m jetstream.Msg, seq uint64, kind, by string) error {
	h := m.Headers()
	out := nats.NewMsg(h.Get(HeaderSubject))
	data, err := originalData(ctx, js, m)
	if err != nil {
		return fmt.Errorf("%s: message %d: %w", kind, seq, err)
	}
	out.Data = data
	base := h.Get(HeaderMsgID)
	if base == "" {
		base = h.Get(HeaderEventID)
	}
	out.Header.Set(jetstream.MsgIDHeader, base+"-"+kind+"-"+strconv.FormatUint(seq, 10))
	if v := h.Get(HeaderPublished); v != "" {
		out.Header.Set(HeaderPublished, v)
	}
	// For the event's history (trail.go): what brought it back, and who.
	out.Header.Set(HeaderCameBack, kind)
	if by != "" {
		out.Header.Set(HeaderCameBackBy, by)
	}
	if _, err := js.PublishMsg(ctx, out); err != nil {
		return fmt.Errorf("%s: publish message %d back: %w", kind, seq, err)
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("%s: delete message %d: %w", kind, seq, err)
	}
	dropBody(ctx, js, h)
	return nil
}
