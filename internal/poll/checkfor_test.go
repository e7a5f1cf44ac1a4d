package poll

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeT records a failure instead of ending the test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = format
	if len(args) > 0 {
		f.failed = strings.TrimSpace(strings.ReplaceAll(format, "%v", "")) + " " + args[len(args)-1].(error).Error()
	}
	panic(f)
}

func TestCheckFor(t *testing.T) {
	n := 0
	CheckFor(t, time.Second, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if n != 3 {
		t.Errorf("f called %d times; want until it returned nil (3)", n)
	}

	ft := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		i := 0
		CheckFor(ft, 30*time.Millisecond, func() error { i++; return errors.New("attempt " + string(rune('0'+i%10))) })
	}()
	if !strings.Contains(ft.failed, "attempt") {
		t.Errorf("failure %q; want the last error", ft.failed)
	}
	if Until("x", true) != nil || Until("the fake's 3 events", false) == nil {
		t.Error("Until: want nil when ok, an error naming what is awaited otherwise")
	}
}
