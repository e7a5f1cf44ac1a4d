package test

import (
	"strings"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/fakegraph"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// Webhooks are signed with any of META_APP_SECRET's secrets (two apps, or a
// rotation); the Graph proof is keyed with CAPI_APP_SECRET alone, the secret
// of the app that issued the token. Meta refuses a proof keyed with anything
// else (code 100, "Invalid appsecret_proof"), and the business then pauses
// with its messages parked, nothing dead-lettered.
func TestAppSecretProofE2E(t *testing.T) {
	const hookA, hookB, capiSecret = "hook-secret-a", "hook-secret-b", "capi-app-secret-7f"
	r := newFaultRig(t, faultOptions{
		IngestEnv:  []string{"META_APP_SECRET=" + hookA + "," + hookB},
		SenderEnv:  []string{"META_APP_SECRET=" + hookA + "," + hookB, "CAPI_APP_SECRET=" + capiSecret},
		AppSecrets: map[string]string{fakegraph.DefaultToken: capiSecret},
	})
	page := faultBusinesses["messenger"][0] // resolved through the Dataset API with the default token
	deliver := func(secret string) []faultConv {
		t.Helper()
		convs := r.convs(5, "messenger", &page)
		body := faultWebhook(convs, time.Now())
		if code := r.postWith(body, webhook.Sign(body, []byte(secret))); code != 200 {
			t.Fatalf("webhook signed with %s = %d; want 200", secret, code)
		}
		for _, c := range convs {
			if err := r.publish(c.subject(), c.EventID, c.conversion(time.Now())); err != nil {
				t.Fatal(err)
			}
		}
		return convs
	}
	convs := append(deliver(hookA), deliver(hookB)...)
	waitFor(t, 60*time.Second, "every conversion at Meta, proven with CAPI_APP_SECRET", func() bool { return faultAllAt(r, convs) })
	if n := r.graph.Rejected(); n != 0 {
		t.Errorf("the fake Graph refused %d requests; want none", n)
	}

	t.Run("wrong CAPI_APP_SECRET pauses the business", func(t *testing.T) {
		r.currentSender().Kill()
		r.env = append(r.env, "CAPI_APP_SECRET=not-the-apps-secret")
		p := r.startSender()
		wrong := deliver(hookA)
		waitFor(t, 60*time.Second, "the business paused", func() bool {
			return strings.Contains(p.Output(), `"msg":"business paused`)
		})
		waitFor(t, 60*time.Second, "its messages parked", func() bool {
			n, err := r.parked(t.Context())
			return err == nil && n == uint64(len(wrong))
		})
		counts := r.graph.CountByEventID()
		for _, c := range wrong {
			if counts[c.EventID] != 0 {
				t.Errorf("%s reached Meta with a wrong proof", c.EventID)
			}
		}
		dead, err := r.deadLetters(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) != 0 {
			t.Errorf("%d dead letters; want none (first: %+v)", len(dead), dead[0])
		}
		if strings.Contains(p.Output(), "not-the-apps-secret") || strings.Contains(p.Output(), fakegraph.DefaultToken) {
			t.Errorf("the sender logged its app secret or token")
		}
	})
}
