// Package embedtest starts the embedded store for tests of the packages
// that run on it as well as on redis-server.
package embedtest

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/embedstore"
)

// Client opens an embedded store in a temporary directory and a client of
// it, both closed at cleanup.
func Client(t *testing.T) *redis.Client {
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
