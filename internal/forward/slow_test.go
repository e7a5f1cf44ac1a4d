package forward

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/poll"
)

// A destination that never answers delays neither Enqueue nor the other
// destination: the healthy one gets every body while the slow one has
// answered none; once it answers, it gets them all too.
func TestSlowDestinationDoesNotDelayOther(t *testing.T) {
	_, js := runJetStream(t)
	release := make(chan struct{})
	var answered atomic.Int64
	down := newDownstream(t, 0)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
			answered.Add(1)
			down.serve(w, r)
		case <-r.Context().Done(): // our FORWARD_TIMEOUT gave up
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	healthy := newDownstream(t, 0)
	cfg := testConfig(time.Minute, slow.URL, healthy.URL)
	e := newEnqueuer(t, js, cfg)
	startForwarder(t, js, cfg, zap.NewNop())
	bodies := bodiesN(t, 0, 20) // five times the slow destination's concurrency
	enqueueAll(t, e, bodies)

	poll.CheckFor(t, 30*time.Second, func() error { return wantAll(healthy, bodies) })
	if n := answered.Load(); n != 0 {
		t.Fatalf("slow destination answered %d requests before release", n)
	}
	close(release)
	poll.CheckFor(t, 60*time.Second, func() error { return wantAll(down, bodies) })
}
