package capi

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	now := time.Unix(1763900600, 0)
	base := channelEvents["whatsapp"] // event_time == now
	with := func(f func(e *Event)) Event {
		e := base
		f(&e)
		return e
	}
	tests := []struct {
		name      string
		ev        Event
		wantField string // "" = valid
	}{
		{"whatsapp purchase", base, ""},
		{"messenger purchase", with(func(e *Event) {
			e.MessagingChannel, e.UserData = ChannelMessenger, channelEvents["messenger"].UserData
		}), ""},
		{"instagram add to cart", with(func(e *Event) {
			e.EventName, e.MessagingChannel, e.UserData = "AddToCart", ChannelInstagram, channelEvents["instagram"].UserData
			e.CustomData = nil
		}), ""},
		{"lead without custom data", with(func(e *Event) { e.EventName, e.CustomData = "LeadSubmitted", nil }), ""},
		{"faq name OrderDelivered", with(func(e *Event) { e.EventName = "OrderDelivered" }), ""},
		{"just under 7 days", with(func(e *Event) { e.EventTime = now.Add(-MaxEventAge).Unix() }), ""},
		{"skew allowed", with(func(e *Event) { e.EventTime = now.Add(MaxFutureSkew).Unix() }), ""},
		{"pixel name Lead", with(func(e *Event) { e.EventName = "Lead" }), "event_name"},
		{"custom name", with(func(e *Event) { e.EventName = "Refund" }), "event_name"},
		{"no time", with(func(e *Event) { e.EventTime = 0 }), "event_time"},
		{"older than 7 days", with(func(e *Event) { e.EventTime = now.Add(-MaxEventAge - time.Second).Unix() }), "event_time"},
		{"in the future", with(func(e *Event) { e.EventTime = now.Add(MaxFutureSkew + time.Second).Unix() }), "event_time"},
		{"website source", with(func(e *Event) { e.ActionSource = "website" }), "action_source"},
		{"telegram", with(func(e *Event) { e.MessagingChannel = "telegram" }), "messaging_channel"},
		{"whatsapp without clid", with(func(e *Event) { e.UserData.CtwaClid = "" }), "user_data.ctwa_clid"},
		{"whatsapp without waba", with(func(e *Event) { e.UserData.WhatsAppBusinessAccountID = "" }), "user_data.whatsapp_business_account_id"},
		{"messenger with whatsapp ids", with(func(e *Event) { e.MessagingChannel = ChannelMessenger }), "user_data.page_id"},
		{"messenger without psid", with(func(e *Event) {
			e.MessagingChannel, e.UserData = ChannelMessenger, UserData{PageID: "1"}
		}), "user_data.page_scoped_user_id"},
		{"instagram without igsid", with(func(e *Event) {
			e.MessagingChannel, e.UserData = ChannelInstagram, UserData{InstagramBusinessAccountID: "1"}
		}), "user_data.ig_sid"},
		{"custom data array", with(func(e *Event) { e.EventName, e.CustomData = "ViewContent", json.RawMessage(`[1]`) }), "custom_data"},
		{"purchase without custom data", with(func(e *Event) { e.CustomData = nil }), "custom_data.currency"},
		{"purchase value string", with(func(e *Event) { e.CustomData = json.RawMessage(`{"currency":"USD","value":"twelve"}`) }), "custom_data.value"},
		{"purchase numeric string", with(func(e *Event) { e.CustomData = json.RawMessage(`{"currency":"USD","value":"12"}`) }), "custom_data.value"},
		{"purchase no currency", with(func(e *Event) { e.CustomData = json.RawMessage(`{"value":12}`) }), "custom_data.currency"},
		{"purchase bad currency", with(func(e *Event) { e.CustomData = json.RawMessage(`{"currency":"US$","value":12}`) }), "custom_data.currency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ev.ValidateAt(now)
			if tt.wantField == "" {
				if err != nil {
					t.Errorf("ValidateAt() = %v; want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.wantField {
				t.Errorf("ValidateAt() = %v; want a ValidationError on %s", err, tt.wantField)
			}
		})
	}
}

func TestValidateUsesClock(t *testing.T) {
	e := channelEvents["messenger"]
	e.EventTime = time.Now().Unix()
	if err := e.Validate(); err != nil {
		t.Errorf("Validate(event at now) = %v; want nil", err)
	}
	e.EventTime = time.Now().Add(-8 * 24 * time.Hour).Unix()
	if err := e.Validate(); err == nil {
		t.Error("Validate(8-day-old event) = nil; want error")
	}
}
