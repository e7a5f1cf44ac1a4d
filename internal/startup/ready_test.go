package startup

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ctmpipe/ctmpipe/internal/natstest"
)

// ctmpipe_dependency_ready is 1 for a check that passes, 0 for one that
// fails, and NATSCheck follows the connection.
func TestRegisterReady(t *testing.T) {
	srv := natstest.RunJetStream(t)
	nc := srv.Connect(t)
	reg := prometheus.NewRegistry()
	checks := Checks{"redis": func(context.Context) error { return errors.New("down") }, "nats": NATSCheck(nc)}
	if err := RegisterReady(reg, checks); err != nil {
		t.Fatal(err)
	}
	if err := RegisterReady(reg, checks); err != nil {
		t.Errorf("second RegisterReady = %v; want nil", err)
	}
	want := `
# HELP ctmpipe_dependency_ready 1 while the dependency answers (checked at each scrape, within 1 s), 0 while it does not: the store (redis) or NATS (nats).
# TYPE ctmpipe_dependency_ready gauge
ctmpipe_dependency_ready{dependency="nats"} 1
ctmpipe_dependency_ready{dependency="redis"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ctmpipe_dependency_ready"); err != nil {
		t.Error(err)
	}
	nc.Close()
	if err := NATSCheck(nc)(t.Context()); err == nil {
		t.Error("NATSCheck of a closed connection = nil")
	}
}
