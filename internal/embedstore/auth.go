package embedstore

import (
	"bytes"
	"crypto/subtle"
	"strconv"
	"strings"
)

// With Options.Password set, a connection must authenticate (AUTH, or
// HELLO with AUTH, as with redis-server's requirepass) before any other
// command: the store listens on a local port, and every process on the
// machine can reach one.
const (
	errNoAuth    = replyErr("NOAUTH Authentication required.")
	errWrongPass = replyErr("WRONGPASS invalid username-password pair or user is disabled.")
	errNoPass    = replyErr("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
	errHelloAuth = replyErr("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
	errNoProto   = replyErr("NOPROTO sorry, this protocol version is not supported.")
)

// Before authentication a command may hold at most preAuthArgs arguments
// of preAuthBulk bytes each: enough for AUTH and HELLO, so that a process
// without the password cannot make the store buffer 512 MiB.
const (
	preAuthArgs = 8
	preAuthBulk = 4 << 10
)

// checkPassword reports whether user and pass are the store's credentials
// (user "default", as Redis names the requirepass user), in constant time.
func (s *Store) checkPassword(user, pass []byte) bool {
	okUser := subtle.ConstantTimeCompare(user, []byte("default"))
	okPass := subtle.ConstantTimeCompare(pass, []byte(s.opts.Password))
	return okUser&okPass == 1
}

// connAuth answers AUTH and HELLO, and refuses every other command of a
// connection not yet authenticated. handled is false for a command it
// leaves to the command table.
func (s *Store) connAuth(out []byte, args [][]byte, authed *bool) (_ []byte, handled bool) {
	name := strings.ToLower(string(args[0]))
	switch name {
	case "auth":
		return appendValue(out, s.auth(args, authed)), true
	case "hello":
		return appendValue(out, s.hello(args, authed)), true
	}
	if !*authed && name != "quit" {
		return appendValue(out, errNoAuth), true
	}
	return out, false
}

// auth is AUTH [username] password.
func (s *Store) auth(args [][]byte, authed *bool) any {
	var user, pass []byte
	switch len(args) {
	case 2:
		user, pass = []byte("default"), args[1]
	case 3:
		user, pass = args[1], args[2]
	default:
		return errSyntax
	}
	if s.opts.Password == "" {
		if len(args) == 2 {
			return errNoPass
		}
		return errWrongPass
	}
	if !s.checkPassword(user, pass) {
		return errWrongPass
	}
	*authed = true
	return status("OK")
}

// hello is HELLO [protover [AUTH username password] [SETNAME name]]. The
// store speaks RESP2 only: HELLO 3 answers NOPROTO (go-redis then falls
// back to AUTH and RESP2, as with an older Redis).
func (s *Store) hello(args [][]byte, authed *bool) any {
	if len(args) > 1 {
		v, err := strconv.Atoi(string(args[1]))
		if err != nil {
			return replyErr("ERR Protocol version is not an integer or out of range")
		}
		if v != 2 {
			return errNoProto
		}
	}
	for i := 2; i < len(args); i++ {
		switch {
		case bytes.EqualFold(args[i], []byte("auth")) && i+2 < len(args):
			if s.opts.Password == "" || !s.checkPassword(args[i+1], args[i+2]) {
				return errWrongPass
			}
			*authed = true
			i += 2
		case bytes.EqualFold(args[i], []byte("setname")) && i+1 < len(args):
			i++
		default:
			return replyErr("ERR Syntax error in HELLO option '" + clip(string(args[i])) + "'")
		}
	}
	if !*authed {
		return errHelloAuth
	}
	return []any{"server", "redis", "version", "7.0.0", "proto", int64(2), "id", int64(0),
		"mode", "standalone", "role", "master", "modules", []any{}}
}
