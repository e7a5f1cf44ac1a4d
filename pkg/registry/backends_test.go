package registry

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/embedstore"
)

// backends are the Redis-shaped stores the registry runs on: redis-server,
// and the all-in-one's embedded store (which must implement every command
// and script the registry sends, or these tests fail on it).
var backends = []struct {
	name  string
	start func(*testing.T) *redis.Client
}{
	{"redis-server", newTestRedis},
	{"embedstore", newEmbedStore},
}

// forBackends runs f once per backend, as a subtest named after it.
func forBackends(t *testing.T, f func(t *testing.T, rdb *redis.Client)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.start(t)) })
	}
}

// newEmbedStore opens an embedded store in a temporary directory and a
// client of it, both closed at cleanup.
func newEmbedStore(t *testing.T) *redis.Client {
	t.Helper()
	s, err := embedstore.Open(embedstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() {
		c.Close()
		s.Close()
	})
	return c
}
