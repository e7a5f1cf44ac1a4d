package webhook_test

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// ExampleSign signs a captured body the way Meta does, to replay it against
// ingest or to post it from a test.
func ExampleSign() {
	body := []byte(`{"object":"page","entry":[]}`)
	secret := []byte("app-secret") // in real use: META_APP_SECRET from the environment

	req, err := http.NewRequest(http.MethodPost, "http://localhost:8080/webhook", bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, secret))

	fmt.Println(req.Header.Get(webhook.SignatureHeader))
	// Ingest checks it against every configured secret:
	fmt.Println(webhook.Verify(body, req.Header.Get(webhook.SignatureHeader), [][]byte{secret}))
	// Output:
	// sha256=e6e9d7a842a48e17f43a34d6125d0d933e2aab92ee37f0993a4d493b50e3d438
	// <nil>
}

// ExampleParse extracts the ad click from a WhatsApp Cloud API delivery.
func ExampleParse() {
	body := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages",
	"value":{"metadata":{"phone_number_id":"106540352242922"},"contacts":[{"wa_id":"16315551234"}],
	"messages":[{"from":"16315551234","timestamp":"1763900000","type":"text","text":{"body":"hi"},
	"referral":{"source_id":"120212345678901234","source_type":"ad","ctwa_clid":"ARAkLkA8rmlF"}}],
	"statuses":[{"status":"delivered"}]}}]}]}`)
	pl, err := webhook.Parse(body)
	if err != nil {
		fmt.Println(err) // ingest answers 400
		return
	}
	for _, t := range pl.Touches {
		fmt.Println(t.Channel, t.BusinessID, t.PhoneNumberID, t.UserID, t.ClickID, t.AdID, t.Time)
	}
	fmt.Println("ignored:", pl.Ignored, "malformed:", pl.Malformed)
	// Output:
	// whatsapp 102290129340398 106540352242922 16315551234 ARAkLkA8rmlF 120212345678901234 1763900000
	// ignored: 1 malformed: 0
}
