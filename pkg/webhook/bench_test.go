package webhook

import (
	"encoding/json"
	"testing"
)

// benchFixtures are the deliveries ingest sees most: one ad click per channel.
var benchFixtures = []struct{ name, file string }{
	{"whatsapp", "whatsapp_cloud_text_with_ctwa_referral.json"},
	{"messenger", "messenger_message_with_ad_referral.json"},
	{"instagram", "instagram_message_with_ad_referral.json"},
}

// BenchmarkVerifyParse is ingest's CPU work per delivery: check the signature
// (with two secrets configured, the matching one second, as during a
// rotation) and extract the clicks.
func BenchmarkVerifyParse(b *testing.B) {
	secrets := [][]byte{[]byte("old-app-secret"), []byte("app-secret")}
	for _, bf := range benchFixtures {
		b.Run(bf.name, func(b *testing.B) {
			body := readFixture(b, bf.file)
			header := Sign(body, secrets[1])
			v := NewVerifier(secrets) // as ingest does
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := v.Verify(body, header); err != nil {
					b.Fatal(err)
				}
				pl, err := Parse(body)
				if err != nil || len(pl.Touches) != 1 {
					b.Fatalf("Parse = %+v, %v", pl, err)
				}
			}
		})
	}
}

// BenchmarkVerify is the signature check alone, with one secret.
func BenchmarkVerify(b *testing.B) {
	secrets := [][]byte{[]byte("app-secret")}
	for _, bf := range benchFixtures {
		b.Run(bf.name, func(b *testing.B) {
			body := readFixture(b, bf.file)
			header := Sign(body, secrets[0])
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Verify(body, header, secrets); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifier is the signature check with pooled HMAC states, as
// ingest does it, to compare with BenchmarkVerify.
func BenchmarkVerifier(b *testing.B) {
	v := NewVerifier([][]byte{[]byte("app-secret")})
	for _, bf := range benchFixtures {
		b.Run(bf.name, func(b *testing.B) {
			body := readFixture(b, bf.file)
			header := Sign(body, []byte("app-secret"))
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := v.Verify(body, header); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParse is Parse alone, to compare with BenchmarkParseStdlib.
func BenchmarkParse(b *testing.B) {
	for _, bf := range benchFixtures {
		b.Run(bf.name, func(b *testing.B) {
			body := readFixture(b, bf.file)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if pl, err := Parse(body); err != nil || len(pl.Touches) != 1 {
					b.Fatalf("Parse = %+v, %v", pl, err)
				}
			}
		})
	}
}

// stdlibReferral and stdlibWebhook are what a naive handler decodes every
// delivery into with encoding/json: the documented payload, all of it.
type stdlibReferral struct {
	// WhatsApp
	SourceURL  string `json:"source_url"`
	SourceID   string `json:"source_id"`
	SourceType string `json:"source_type"`
	Body       string `json:"body"`
	Headline   string `json:"headline"`
	MediaType  string `json:"media_type"`
	ImageURL   string `json:"image_url"`
	VideoURL   string `json:"video_url"`
	CtwaClid   string `json:"ctwa_clid"`
	// Messenger and Instagram
	Ref            string            `json:"ref"`
	AdID           string            `json:"ad_id"`
	Source         string            `json:"source"`
	Type           string            `json:"type"`
	AdsContextData map[string]string `json:"ads_context_data"`
}

type stdlibWebhook struct {
	Object string `json:"object"`
	Entry  []struct {
		ID        string `json:"id"`
		Time      int64  `json:"time"`
		Messaging []struct {
			Sender    struct{ ID string } `json:"sender"`
			Recipient struct{ ID string } `json:"recipient"`
			Timestamp int64               `json:"timestamp"`
			Message   *struct {
				Mid      string          `json:"mid"`
				Text     string          `json:"text"`
				IsEcho   bool            `json:"is_echo"`
				Referral *stdlibReferral `json:"referral"`
			} `json:"message"`
			Postback *struct {
				Title    string          `json:"title"`
				Payload  string          `json:"payload"`
				Referral *stdlibReferral `json:"referral"`
			} `json:"postback"`
			Referral *stdlibReferral `json:"referral"`
		} `json:"messaging"`
		Changes []struct {
			Field string `json:"field"`
			Value struct {
				MessagingProduct string `json:"messaging_product"`
				Metadata         struct {
					DisplayPhoneNumber string `json:"display_phone_number"`
					PhoneNumberID      string `json:"phone_number_id"`
				} `json:"metadata"`
				Contacts []struct {
					Profile struct{ Name string } `json:"profile"`
					WaID    string                `json:"wa_id"`
				} `json:"contacts"`
				Messages []struct {
					From      string                `json:"from"`
					ID        string                `json:"id"`
					Timestamp string                `json:"timestamp"`
					Type      string                `json:"type"`
					Text      struct{ Body string } `json:"text"`
					Referral  *stdlibReferral       `json:"referral"`
				} `json:"messages"`
				Statuses []json.RawMessage `json:"statuses"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

// BenchmarkParseStdlib is the baseline: the same bodies decoded with
// encoding/json into stdlibWebhook. It builds no Touches, so it does less
// than Parse and the ratio is, if anything, flattering to the baseline.
func BenchmarkParseStdlib(b *testing.B) {
	for _, bf := range benchFixtures {
		b.Run(bf.name, func(b *testing.B) {
			body := readFixture(b, bf.file)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var w stdlibWebhook
				if err := json.Unmarshal(body, &w); err != nil || len(w.Entry) != 1 {
					b.Fatalf("Unmarshal = %v", err)
				}
			}
		})
	}
}
