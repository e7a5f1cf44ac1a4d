package services

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// fakeRegistry answers Business from a map of records or errors.
type fakeRegistry map[string]any

func (f fakeRegistry) Business(_ context.Context, id string) (registry.Business, error) {
	switch v := f[id].(type) {
	case registry.Business:
		return v, nil
	case error:
		return registry.Business{}, v
	}
	return registry.Business{}, registry.ErrNotFound
}

// TestRegistryPolicies: first_touch records are first touch; no record,
// last_touch and unreadable records (logged once) last touch; Redis away
// is an error, so that Meta sends the delivery again.
func TestRegistryPolicies(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	away := errors.New("dial tcp: connection refused")
	p := &RegistryPolicies{Log: zap.New(core), Registry: fakeRegistry{
		"101": registry.Business{Attribution: registry.FirstTouch},
		"102": registry.Business{Attribution: registry.LastTouch},
		"103": registry.ErrNoKey,
		"104": away,
	}}
	for _, tt := range []struct {
		id      string
		want    bool
		wantErr bool
	}{{"101", true, false}, {"102", false, false}, {"105", false, false}, {"103", false, false}, {"103", false, false}, {"104", false, true}, {"not-a-meta-id", false, false}} {
		got, err := p.FirstTouch(t.Context(), tt.id)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("FirstTouch(%s) = %v, %v; want %v, error %v", tt.id, got, err, tt.want, tt.wantErr)
		}
	}
	if n := logs.FilterMessageSnippet("attribution policy of this business unreadable").Len(); n != 1 {
		t.Errorf("%d log lines for the unreadable record; want 1", n)
	}
}
