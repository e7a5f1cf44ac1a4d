package embedstore

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// luaEnv runs EVAL scripts. Scripts run with the store's lock held, one at
// a time, which makes each atomic, as in Redis; so one Lua state serves
// them all, and a script is compiled once, when first seen.
//
// Holding the lock, a script that does not end would stop the store (and
// with it every webhook and the shutdown). So each runs with a budget
// (Options.ScriptBudget): gopher-lua checks its context before every
// instruction, and past the budget the script raises an error that no
// pcall inside it can outlast (the next instruction raises again). SCRIPT
// KILL cancels the same context from another connection, without the
// lock. As after any error in a Redis script, the writes it made before
// stay.
type luaEnv struct {
	s       *Store
	L       *lua.LState
	scripts map[string]*lua.LFunction // by SHA-1, hex
	ro      bool                      // the running script is EVAL_RO
	budget  time.Duration

	// rmu guards the running script's state below. It is not the store's
	// lock (which the script holds), so that SCRIPT KILL and Close reach it.
	rmu     sync.Mutex
	cancel  context.CancelCauseFunc // the running script's; nil when none runs
	wrote   bool                    // the running script has called a write command
	closed  bool                    // the store is closing: no new script starts
	stopped uint64                  // scripts stopped at their budget or by SCRIPT KILL
}

// Why a script was stopped (the cause of its context).
var (
	errScriptBudget = errors.New("script budget")
	errScriptKilled = errors.New("SCRIPT KILL")
	errStoreClosing = errors.New("store closing")
)

const (
	errNotBusy    = replyErr("NOTBUSY No scripts in execution right now.")
	errUnkillable = replyErr("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.")
)

func newLuaEnv(s *Store, budget time.Duration) *luaEnv {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	for _, unsafe := range []string{"dofile", "loadfile", "require", "module"} {
		L.SetGlobal(unsafe, lua.LNil)
	}
	e := &luaEnv{s: s, L: L, scripts: map[string]*lua.LFunction{}, budget: budget}
	r := L.NewTable()
	L.SetFuncs(r, map[string]lua.LGFunction{
		"call":         func(L *lua.LState) int { return e.call(L, false) },
		"pcall":        func(L *lua.LState) int { return e.call(L, true) },
		"error_reply":  func(L *lua.LState) int { L.Push(errTable(L, L.CheckString(1))); return 1 },
		"status_reply": func(L *lua.LState) int { L.Push(okTable(L, L.CheckString(1))); return 1 },
		"sha1hex":      func(L *lua.LState) int { L.Push(lua.LString(sha1Hex(L.CheckString(1)))); return 1 },
		"log":          func(*lua.LState) int { return 0 },
	})
	L.SetGlobal("redis", r)
	return e
}

func sha1Hex(src string) string {
	h := sha1.Sum([]byte(src))
	return hex.EncodeToString(h[:])
}

func errTable(L *lua.LState, msg string) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("err", lua.LString(msg))
	return t
}

func okTable(L *lua.LState, msg string) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("ok", lua.LString(msg))
	return t
}

// load compiles src (once) and returns it with its SHA-1.
func (e *luaEnv) load(src string) (string, *lua.LFunction, error) {
	sha := sha1Hex(src)
	if fn, ok := e.scripts[sha]; ok {
		return sha, fn, nil
	}
	fn, err := e.L.LoadString(src)
	if err != nil {
		return "", nil, err
	}
	e.scripts[sha] = fn
	return sha, fn, nil
}

// cmdEval is EVAL (or EVALSHA) script numkeys key... arg...
func cmdEval(bySHA, ro bool) func(*Store, [][]byte, int64) any {
	return func(s *Store, a [][]byte, _ int64) any {
		var fn *lua.LFunction
		if bySHA {
			if fn = s.lua.scripts[strings.ToLower(string(a[1]))]; fn == nil {
				return errNoScript
			}
		} else {
			var err error
			if _, fn, err = s.lua.load(string(a[1])); err != nil {
				return replyErr("ERR Error compiling script: " + firstLine(err.Error()))
			}
		}
		n, err := strconv.Atoi(string(a[2]))
		switch {
		case err != nil:
			return errNotInt
		case n < 0:
			return replyErr("ERR Number of keys can't be negative")
		case n > len(a)-3:
			return replyErr("ERR Number of keys can't be greater than number of args")
		}
		return s.lua.run(fn, a[3:3+n], a[3+n:], ro)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func (e *luaEnv) run(fn *lua.LFunction, keys, argv [][]byte, ro bool) any {
	ctx, stop, ok := e.start()
	if !ok {
		return replyErr("ERR the store is closing")
	}
	defer stop()
	L := e.L
	L.SetGlobal("KEYS", strTable(L, keys))
	L.SetGlobal("ARGV", strTable(L, argv))
	e.ro = ro
	L.SetContext(ctx)
	L.Push(fn)
	err := L.PCall(0, 1, nil)
	L.RemoveContext()
	if err != nil && ctx.Err() != nil {
		e.rmu.Lock()
		e.stopped++
		e.rmu.Unlock()
		switch context.Cause(ctx) {
		case errScriptBudget:
			return replyErr("ERR script stopped: it ran past its budget of " + e.budget.String() + " (writes it made before stay)")
		case errScriptKilled:
			return replyErr("ERR script stopped by SCRIPT KILL")
		}
		return replyErr("ERR script stopped: the store is closing")
	}
	if err != nil {
		var ae *lua.ApiError
		if errors.As(err, &ae) {
			if t, ok := ae.Object.(*lua.LTable); ok {
				if m := t.RawGetString("err"); m != lua.LNil {
					return replyErr(m.String())
				}
			}
			return replyErr("ERR user_script: " + firstLine(ae.Object.String()))
		}
		return replyErr("ERR user_script: " + firstLine(err.Error()))
	}
	ret := L.Get(-1)
	L.Pop(1)
	return fromLua(ret)
}

// start registers a script as running, with a context that ends at its
// budget, on SCRIPT KILL or at Close; stop unregisters it.
func (e *luaEnv) start() (context.Context, func(), bool) {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	if e.closed {
		return nil, nil, false
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	t := time.AfterFunc(e.budget, func() { cancel(errScriptBudget) })
	e.cancel, e.wrote = cancel, false
	return ctx, func() {
		t.Stop()
		e.rmu.Lock()
		e.cancel = nil
		e.rmu.Unlock()
		cancel(nil)
	}, true
}

// kill is SCRIPT KILL: it stops the running script unless that script has
// written (stopping it would leave half its writes, so Redis refuses too;
// its budget still ends it).
func (e *luaEnv) kill() any {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	switch {
	case e.cancel == nil:
		return errNotBusy
	case e.wrote:
		return errUnkillable
	}
	e.cancel(errScriptKilled)
	return status("OK")
}

// close stops the running script, whatever it did, and any later one
// before it starts: Close must not wait on a script.
func (e *luaEnv) close() {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	e.closed = true
	if e.cancel != nil {
		e.cancel(errStoreClosing)
	}
}

// state reports whether a script runs now and how many were stopped.
func (e *luaEnv) state() (running bool, stopped uint64) {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	return e.cancel != nil, e.stopped
}

// noteWrite records that the running script called a write command.
func (e *luaEnv) noteWrite() {
	e.rmu.Lock()
	e.wrote = true
	e.rmu.Unlock()
}

func strTable(L *lua.LState, v [][]byte) *lua.LTable {
	t := L.CreateTable(len(v), 0)
	for i, b := range v {
		t.RawSetInt(i+1, lua.LString(b))
	}
	return t
}

// call is redis.call (protect false: an error reply raises) and
// redis.pcall (an error reply is returned as a table).
func (e *luaEnv) call(L *lua.LState, protect bool) int {
	top := L.GetTop()
	if top == 0 {
		L.RaiseError("Please specify at least one argument for this redis lib call")
	}
	args := make([][]byte, top)
	for i := 1; i <= top; i++ {
		switch v := L.Get(i).(type) {
		case lua.LString:
			args[i-1] = []byte(v)
		case lua.LNumber:
			args[i-1] = []byte(v.String())
		default:
			L.RaiseError("Lua redis lib command arguments must be strings or integers")
		}
	}
	var v any
	_, c, ok := e.s.lookupCommand(args[0])
	switch {
	case ok && c.write && e.ro:
		v = replyErr("ERR Write commands are not allowed from read-only scripts")
	case ok && c.write:
		e.noteWrite()
		fallthrough
	default:
		v = e.s.call(args, true)
	}
	if re, ok := v.(replyErr); ok {
		t := errTable(L, string(re))
		if !protect {
			L.Error(t, 0)
		}
		L.Push(t)
		return 1
	}
	L.Push(toLua(L, v))
	return 1
}

// toLua converts a reply to Lua the way Redis does: null → false,
// integer → number, status → {ok=…}, array → table.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case int64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case status:
		return okTable(L, string(v))
	case []any:
		t := L.CreateTable(len(v), 0)
		for i, x := range v {
			t.RawSetInt(i+1, toLua(L, x))
		}
		return t
	}
	return lua.LFalse
}

// fromLua converts a script's result to a reply: number → integer
// (truncated), true → 1, false and nil → null, {err=…} → error, {ok=…} →
// status, a table → the array up to its first nil.
func fromLua(v lua.LValue) any {
	switch v := v.(type) {
	case lua.LNumber:
		return int64(v)
	case lua.LString:
		return string(v)
	case lua.LBool:
		if v {
			return int64(1)
		}
		return nil
	case *lua.LTable:
		if m := v.RawGetString("err"); m != lua.LNil {
			return replyErr(m.String())
		}
		if m := v.RawGetString("ok"); m != lua.LNil {
			return status(m.String())
		}
		var out []any
		for i := 1; ; i++ {
			x := v.RawGetInt(i)
			if x == lua.LNil {
				break
			}
			out = append(out, fromLua(x))
		}
		if out == nil {
			out = []any{}
		}
		return out
	}
	return nil
}

// cmdScript is SCRIPT LOAD|EXISTS|FLUSH.
func cmdScript(s *Store, a [][]byte, _ int64) any {
	switch strings.ToLower(string(a[1])) {
	case "load":
		if len(a) != 3 {
			return errSyntax
		}
		sha, _, err := s.lua.load(string(a[2]))
		if err != nil {
			return replyErr("ERR Error compiling script: " + firstLine(err.Error()))
		}
		return sha
	case "exists":
		out := make([]any, len(a)-2)
		for i, h := range a[2:] {
			out[i] = int64(0)
			if s.lua.scripts[strings.ToLower(string(h))] != nil {
				out[i] = int64(1)
			}
		}
		return out
	case "flush":
		clear(s.lua.scripts)
		return status("OK")
	}
	return errSyntax
}
