package sender

import (
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/conversion"
)

// businessOf is the business a conversion belongs to: the stored context's
// (for WhatsApp the WABA id, even when the message gave the phone_number_id),
// else the message's own business_id.
func businessOf(c *conversion.Conversion, cx *attribution.Context) string {
	if cx != nil && cx.BusinessID != "" {
		return cx.BusinessID
	}
	return c.BusinessID
}

// toEvent maps a conversion and its context (nil only for Messenger and
// Instagram when REQUIRE_REFERRAL does not list the channel) to a Conversions API event with the
// channel's user_data: WhatsApp the WABA id and ctwa_clid, Messenger the page
// id and PSID, Instagram the account id and IGSID.
func toEvent(c *conversion.Conversion, cx *attribution.Context, eventTime int64) capi.Event {
	business := businessOf(c, cx)
	user := c.UserID
	if cx != nil && cx.UserID != "" {
		user = cx.UserID
	}
	ev := capi.Event{
		EventName:        c.EventName,
		EventTime:        eventTime,
		EventID:          c.EventID,
		ActionSource:     capi.ActionSource,
		MessagingChannel: c.Channel,
		CustomData:       c.CustomData,
		// Limited Data Use goes per event, as the publisher set it.
		DataProcessingOptions:        c.DataProcessingOptions,
		DataProcessingOptionsCountry: c.DataProcessingOptionsCountry,
		DataProcessingOptionsState:   c.DataProcessingOptionsState,
	}
	switch c.Channel {
	case attribution.WhatsApp:
		ev.UserData.WhatsAppBusinessAccountID = business
		switch {
		case c.CtwaClid != "": // Meta's own click id (automatic events)
			ev.UserData.CtwaClid = c.CtwaClid
		case cx != nil:
			ev.UserData.CtwaClid = cx.ClickID
		}
	case attribution.Messenger:
		ev.UserData.PageID = business
		ev.UserData.PageScopedUserID = user
	case attribution.Instagram:
		ev.UserData.InstagramBusinessAccountID = business
		ev.UserData.IGSID = user
	}
	return ev
}
