package sender

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/ctmpipe/ctmpipe/pkg/conversion"
)

// DefaultRequireReferral is REQUIRE_REFERRAL's default: Messenger
// conversions need a stored ad referral, Instagram ones do not. Meta
// documents a referral on Messenger messages, postbacks and
// messaging_referrals from ads ("Messenger Platform: referral"), but none
// on Instagram message webhooks, so requiring one there would leave most
// Instagram conversions unattributed. WhatsApp always needs its click:
// CAPI takes no WhatsApp event without ctwa_clid.
const DefaultRequireReferral = conversion.Messenger

// ParseRequireReferral reads REQUIRE_REFERRAL: a comma list of the channels
// (messenger, instagram) whose conversions wait for a stored ad referral;
// "none" (or "false", "off") for neither. The setting used to be a boolean
// for both channels, so "true" ("on") still means messenger,instagram.
// whatsapp is refused: it always needs its ad click, so listing it would
// suggest it could be turned off.
func ParseRequireReferral(s string) ([]string, error) {
	const format = "config: REQUIRE_REFERRAL: want a comma list of channels (messenger, instagram) or none"
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none", "false", "off", "no", "0":
		return nil, nil
	case "true", "on", "yes", "1":
		return []string{conversion.Messenger, conversion.Instagram}, nil
	}
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		ch := strings.ToLower(strings.TrimSpace(f))
		switch ch {
		case conversion.Messenger, conversion.Instagram:
			if !slices.Contains(out, ch) {
				out = append(out, ch)
			}
		case conversion.WhatsApp:
			return nil, errors.New(format + " (whatsapp always needs its ad click: ctwa_clid)")
		default:
			return nil, errors.New(format)
		}
	}
	return out, nil
}

// referralRequired reports whether a conversion of business on channel
// waits for a stored ad referral: the registry record's require_referral
// when it has one, else REQUIRE_REFERRAL.
func (s *Service) referralRequired(ctx context.Context, business, channel string) bool {
	if channel == conversion.WhatsApp {
		return false // checked on its own: ctwa_clid
	}
	if r := s.datasets.requireReferral(ctx, business); r != nil {
		return *r
	}
	return s.cfg.referralRequired(channel)
}

// referralRequired reports whether a conversion on channel waits for a
// stored ad referral (WhatsApp's ctwa_clid is checked on its own).
func (c Config) referralRequired(channel string) bool {
	return slices.Contains(c.RequireReferral, channel)
}
