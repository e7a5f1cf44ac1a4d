package embedstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// waitScriptRunning waits until a script holds the store.
func waitScriptRunning(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s.Stats().ScriptRunning {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no script started within 30s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestEndlessScriptStopsAtBudget: an endless script (also one that
// catches errors with pcall) answers an error once its budget is spent,
// and the store then answers other commands again; its earlier write
// stays, as after any error in a Redis script.
func TestEndlessScriptStopsAtBudget(t *testing.T) {
	const budget = 200 * time.Millisecond
	_, c := openTest(t, Options{Dir: t.TempDir(), ScriptBudget: budget})
	ctx := t.Context()
	for _, src := range []string{
		`while true do end`,
		`redis.call('SET', KEYS[1], 'before') while true do end`,
		`while true do pcall(function() while true do end end) end`,
		`local function f() return pcall(f) end while true do f() end`,
	} {
		err := c.Eval(ctx, src, []string{"written"}).Err()
		if err == nil || !strings.Contains(err.Error(), "ran past its budget of 200ms") {
			t.Errorf("EVAL %q = %v; want the budget error", src, err)
		}
		if err := c.Set(ctx, "after", "1", 0).Err(); err != nil {
			t.Errorf("SET after %q: %v", src, err)
		}
	}
	if got, err := c.Get(ctx, "written").Result(); err != nil || got != "before" {
		t.Errorf("GET written = %q, %v; want the script's write before it was stopped", got, err)
	}
	// Scripts within their budget are unchanged.
	if got, err := c.Eval(ctx, `return redis.call('INCR', KEYS[1])`, []string{"n"}).Int(); err != nil || got != 1 {
		t.Errorf("EVAL INCR = %d, %v; want 1", got, err)
	}
}

// TestScriptKill: SCRIPT KILL, from another connection while the script
// holds the store, stops a script that has not written (NOTBUSY when none
// runs, UNKILLABLE once it wrote, as in Redis; its budget still ends it).
func TestScriptKill(t *testing.T) {
	s, c := openTest(t, Options{Dir: t.TempDir(), ScriptBudget: time.Hour})
	ctx := t.Context()
	if err := c.ScriptKill(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOTBUSY") {
		t.Errorf("SCRIPT KILL with no script = %v; want NOTBUSY", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Eval(context.WithoutCancel(ctx), `while true do end`, nil).Err() }()
	waitScriptRunning(t, s)
	killer := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer killer.Close()
	must(t, killer.ScriptKill(ctx).Err())
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "stopped by SCRIPT KILL") {
			t.Errorf("killed EVAL = %v; want the SCRIPT KILL error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the script went on after SCRIPT KILL")
	}
	must(t, c.Ping(ctx).Err())
}

// TestScriptThatWroteIsUnkillable: SCRIPT KILL refuses a script that has
// written; Close still stops it.
func TestScriptThatWroteIsUnkillable(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), ScriptBudget: time.Hour})
	must(t, err)
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		done <- c.Eval(context.WithoutCancel(t.Context()), `redis.call('SET', 'k', 'v') while true do end`, nil).Err()
	}()
	waitScriptRunning(t, s)
	killer := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer killer.Close()
	if err := killer.ScriptKill(t.Context()).Err(); err == nil || !strings.HasPrefix(err.Error(), "UNKILLABLE") {
		t.Errorf("SCRIPT KILL of a script that wrote = %v; want UNKILLABLE", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		must(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Close waited on the running script")
	}
	<-done
}
