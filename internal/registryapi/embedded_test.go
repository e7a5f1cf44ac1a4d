package registryapi

import (
	"testing"
)

// onEmbedded makes newTestAPI keep the registry in the all-in-one's
// embedded store instead of redis-server (set only by
// TestEndpointsOnEmbeddedStore; no test here runs in parallel).
var onEmbedded bool

// TestEndpointsOnEmbeddedStore runs the endpoint tests again with the
// registry in the embedded store, as all-in-one runs it without REDIS_URL.
func TestEndpointsOnEmbeddedStore(t *testing.T) {
	onEmbedded = true
	defer func() { onEmbedded = false }()
	for _, tt := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"Auth", TestAuth}, {"PutCreateReplaceGet", TestPutCreateReplaceGet}, {"PutRejects", TestPutRejects},
		{"PutResolvesDataset", TestPutResolvesDataset}, {"PutWithoutKey", TestPutWithoutKey},
		{"GetHealth", TestGetHealth}, {"ListPages", TestListPages}, {"Delete", TestDelete},
		{"UnknownBusiness", TestUnknownBusiness}, {"Resume", TestResume},
	} {
		t.Run(tt.name, tt.f)
	}
}
