package forward_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/forward"
)

// The wiring in ingest: one Enqueuer for the handler, one Forwarder run
// beside the server. cfg comes from forward.FromValues.
func Example() {
	cfg := forward.Config{URLs: []string{"https://inbox.example/webhook"}}
	nc, _ := nats.Connect(nats.DefaultURL, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	js, _ := jetstream.New(nc)
	enq, _ := forward.NewEnqueuer(js, cfg)
	fwd, _ := forward.New(js, cfg, zap.NewNop(), nil)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = fwd.Run(ctx) }() // returns after ctx is done and posts in flight finished

	http.HandleFunc("POST /webhook", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// … verify X-Hub-Signature-256 and store the click first …
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := enq.Enqueue(ctx, body, r.Header); err != nil {
			if errors.Is(err, forward.ErrEnqueue) {
				w.WriteHeader(http.StatusServiceUnavailable) // Meta retries
				return
			}
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}
