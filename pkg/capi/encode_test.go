package capi

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAppendEventsBody: the hand-written encoder writes what json.Marshal
// writes, byte for byte, for any strings (invalid UTF-8, control and HTML
// characters included) and any custom_data json.Marshal accepts; custom_data
// json.Marshal refuses is refused too.
func FuzzAppendEventsBody(f *testing.F) {
	for _, ev := range channelEvents {
		f.Add(ev.EventName, ev.EventID, ev.UserData.CtwaClid, ev.UserData.PageScopedUserID, "ctmpipe", int64(ev.EventTime), []byte(ev.CustomData))
	}
	f.Add("Pur<chase>&", "id\u2028\u2029", "\x00\x1f\"\\\n\r\t", "\xff\xfe", "", int64(-1), []byte(` { "a" : "<b>&\u2028" , "c":[1, 2.5e3, null] } `))
	f.Add("", "", "", "", "", int64(0), []byte(`[1`))
	f.Fuzz(func(t *testing.T, name, id, clid, psid, agent string, at int64, custom []byte) {
		country, state := int(at%3), int(at)
		evs := []Event{
			{EventName: name, EventTime: at, EventID: id, ActionSource: ActionSource, MessagingChannel: ChannelWhatsApp,
				UserData: UserData{WhatsAppBusinessAccountID: psid, CtwaClid: clid}, CustomData: custom},
			{EventName: id, EventTime: -at, ActionSource: name, MessagingChannel: clid,
				UserData: UserData{PageID: agent, PageScopedUserID: psid, InstagramBusinessAccountID: clid, IGSID: name}},
			{EventName: agent},
			{EventName: name, DataProcessingOptions: []string{id, clid}, DataProcessingOptionsCountry: &country,
				DataProcessingOptionsState: &state},
		}
		want, werr := json.Marshal(eventsBody{Data: evs, PartnerAgent: agent, TestEventCode: name})
		got, gerr := appendEventsBody(nil, evs, agent, name)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("errors differ: json.Marshal %v, appendEventsBody %v", werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("body differs:\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkEncodeEvents(b *testing.B) {
	evs := make([]Event, 1000)
	for i := range evs {
		evs[i] = channelEvents[[]string{"whatsapp", "messenger", "instagram"}[i%3]]
	}
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(eventsBody{Data: evs, PartnerAgent: "ctmpipe"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = appendEventsBody(buf[:0], evs, "ctmpipe", ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}
