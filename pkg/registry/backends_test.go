package registry

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/embedstore/embedtest"
)

// backends are the Redis-shaped stores the registry runs on: redis-server,
// and the all-in-one's embedded store (which must implement every command
// and script the registry sends, or these tests fail on it).
var backends = []struct {
	name  string
	start func(*testing.T) *redis.Client
}{
	{"redis-server", newTestRedis},
	{"embedstore", embedtest.Client},
}

// forBackends runs f once per backend, as a subtest named after it.
func forBackends(t *testing.T, f func(t *testing.T, rdb *redis.Client)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.start(t)) })
	}
}
