package sender

import (
	"strconv"
	"testing"
	"time"

	"github.com/ctmpipe/ctmpipe/pkg/capi"
)

// Tens of thousands of businesses that sent once do not keep their state:
// only those still waiting (throttled, paused) stay past businessIdle.
func TestBusinessesForgetIdle(t *testing.T) {
	bs := newBusinesses(DefaultConfig())
	t0 := time.Now()
	for i := range 20000 {
		b := bs.getAt("b"+strconv.Itoa(i), t0)
		bs.succeeded(b, capi.Usage{}, t0)
	}
	bs.failed(bs.getAt("throttled", t0), true, time.Hour, t0)
	bs.pause(bs.getAt("paused", t0), t0.Add(time.Hour)) // paused from an hour on
	if n := bs.len(); n != 20002 {
		t.Fatalf("%d businesses; want 20002", n)
	}
	bs.getAt("new", t0.Add(businessIdle+time.Second))
	if n := bs.len(); n != 3 {
		t.Errorf("%d businesses after %v idle; want 3 (throttled, paused, new)", n, businessIdle)
	}
	if w, _ := bs.getAt("throttled", t0.Add(businessIdle+time.Second)).blocked(t0.Add(businessIdle + time.Second)); w <= 0 {
		t.Error("the throttled business forgot its wait")
	}
}
