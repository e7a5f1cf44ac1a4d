package autoevents_test

import (
	"context"
	"errors"
	"net/http"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctmpipe/ctmpipe/internal/autoevents"
	"github.com/ctmpipe/ctmpipe/internal/settings"
	"github.com/ctmpipe/ctmpipe/pkg/webhook"
)

// How ingest wires the feature: the setting into its --help and config, one
// Publisher, and in the webhook handler, after the contexts are written, the
// Payload's automatic events published before the 200.
func Example() {
	v, err := settings.Parse("ingest", os.Args[1:], os.Getenv, autoevents.Settings())
	if err != nil || v.Err() != nil {
		return
	}
	cfg := autoevents.ConfigFrom(v)
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		return
	}
	js, _ := jetstream.New(nc)
	pub, err := autoevents.NewPublisher(js, cfg, prometheus.NewRegistry())
	if err != nil {
		return
	}

	handle := func(ctx context.Context, body []byte) int {
		pl, err := webhook.Parse(body)
		if err != nil {
			return http.StatusBadRequest
		}
		// ... store pl.Touches ...
		if len(pl.AutomaticEvents) > 0 {
			res, err := pub.Publish(ctx, pl.AutomaticEvents)
			if errors.Is(err, autoevents.ErrUnavailable) {
				return http.StatusServiceUnavailable // Meta redelivers
			}
			_ = res // log res.Published, res.Duplicates, len(res.Invalid) ...
		}
		return http.StatusOK
	}
	_ = handle
}
