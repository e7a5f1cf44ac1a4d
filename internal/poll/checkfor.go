// Package poll is what tests share for waiting on something that
// happens in another goroutine or process: CheckFor, the one polling loop
// of the tree.
package poll

import (
	"errors"
	"testing"
	"time"
)

// CheckFor calls f until it returns nil, every 10 ms, and fails t with f's
// last error once timeout has passed. The error says why the wait is not
// over ("3 of 5 events at the fake"), so that a timeout explains itself. A
// test that asserts an absence waits with it on a positive signal first
// (the counter that says the redelivery was processed), never on a sleep.
func CheckFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Until is a condition as CheckFor's f returns it: nil once ok, else an
// error naming what is awaited.
func Until(what string, ok bool) error {
	if ok {
		return nil
	}
	return errors.New("still waiting for " + what)
}
