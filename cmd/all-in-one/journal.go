package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// journalHook journals the keys each write command touched, after it ran
// and before its caller sees the result. A journal failure becomes the
// command's error: better a 503 to Meta (which retries) than a 200 for a
// context that a crash would lose.
type journalHook struct{ s *embeddedStore }

func (h journalHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h journalHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		keys, all := writtenKeys(cmd)
		if len(keys) == 0 && !all {
			return err
		}
		// Journal even when the command failed: a script may have written
		// before its error, and the current state is always safe to record.
		if jerr := h.s.persist(keys, all); jerr != nil {
			cmd.SetErr(jerr)
			return jerr
		}
		return err
	}
}

func (h journalHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		var keys []string
		all := false
		for _, c := range cmds {
			k, a := writtenKeys(c)
			keys = append(keys, k...)
			all = all || a
		}
		if len(keys) == 0 && !all {
			return err
		}
		if jerr := h.s.persist(keys, all); jerr != nil {
			for _, c := range cmds {
				c.SetErr(jerr)
			}
			return jerr
		}
		return err
	}
}

// readOnly lists the commands the pipeline sends that write nothing.
var readOnly = map[string]bool{
	"get": true, "mget": true, "exists": true, "ttl": true, "pttl": true, "type": true, "strlen": true,
	"scan": true, "keys": true, "dbsize": true, "ping": true, "echo": true, "info": true, "time": true,
	"hello": true, "client": true, "select": true, "auth": true, "script": true, "eval_ro": true,
	"evalsha_ro": true, "command": true, "readonly": true, "getrange": true, "randomkey": true,
}

// writtenKeys returns the keys a command may have written, or all for a
// command that may have written anything (FLUSHALL and the like).
func writtenKeys(cmd redis.Cmder) (keys []string, all bool) {
	name := strings.ToLower(cmd.Name())
	args := cmd.Args()
	switch {
	case readOnly[name]:
		return nil, false
	case name == "eval" || name == "evalsha" || name == "fcall":
		if len(args) < 3 {
			return nil, false
		}
		n, err := strconv.Atoi(fmt.Sprint(args[2]))
		if err != nil || 3+n > len(args) {
			return nil, true
		}
		return strs(args[3 : 3+n]), false
	case name == "del" || name == "unlink":
		return strs(args[1:]), false
	case name == "mset" || name == "msetnx":
		for i := 1; i < len(args); i += 2 {
			keys = append(keys, fmt.Sprint(args[i]))
		}
		return keys, false
	case name == "flushall" || name == "flushdb" || name == "rename" || name == "renamenx" || name == "copy" || name == "move":
		return nil, true
	case len(args) >= 2:
		return strs(args[1:2]), false
	}
	return nil, false
}

func strs(args []any) []string {
	out := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			out[i] = v
		case []byte:
			out[i] = string(v)
		default:
			out[i] = fmt.Sprint(v)
		}
	}
	return out
}
