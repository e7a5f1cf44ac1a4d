package sender

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/registryapi"
	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

// resumeOKFor is how long a resume marks a business as working: long
// enough for every sender's unpark round (at most 10 s) to send its parked
// messages back in full rather than as a probe, as README's "resume" does by
// hand.
const resumeOKFor = 10 * time.Minute

// Resumer ends a business's pause through the shared keys every sender
// reads (pauseKey, okKey): the pause is deleted and the business marked as
// working, so the next unpark round of any sender sends its parked messages
// back. It is what POST /v1/businesses/{id}/resume runs (registryapi).
//
// Each sender's own in-memory pause ends within about a second: its
// resumeLoop (registry.go) sees the pause key gone and the ok key set.
type Resumer struct {
	Redis redis.UniversalClient
	// JS, when not nil, counts the business's parked messages for the
	// answer; nil reports 0.
	JS jetstream.JetStream
}

var _ registryapi.Resumer = Resumer{}

// resumeScript deletes the pause (KEYS[1]) and sets the ok key (KEYS[2])
// for ARGV[1] ms; it returns how many pause keys it deleted. Both keys share
// the business's hash tag.
var resumeScript = redis.NewScript(`
local n = redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return n`)

// Resume implements registryapi.Resumer.
func (r Resumer) Resume(ctx context.Context, businessID string) (registryapi.ResumeResult, error) {
	var res registryapi.ResumeResult
	// One script, atomic as the transaction it replaces was, because a
	// transaction cannot carry the WAIT that confirms the resume on
	// REDIS_MIN_REPLICAS replicas before the API answers.
	cmd, err := replicas.RunScript(ctx, r.Redis, resumeScript, []string{pauseKey(businessID), okKey(businessID)},
		resumeOKFor.Milliseconds())
	var del int64
	if err == nil {
		del, err = cmd.Int64()
	}
	if err != nil {
		return res, fmt.Errorf("sender: resume: %w", err)
	}
	res.WasPaused = del > 0
	if r.JS == nil {
		return res, nil
	}
	stream, err := r.JS.Stream(ctx, StreamParked)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("sender: resume: parked stream: %w", err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(parkSubject(businessID)))
	if err != nil {
		return res, fmt.Errorf("sender: resume: parked stream: %w", err)
	}
	res.Parked = int(info.State.Subjects[parkSubject(businessID)])
	return res, nil
}
