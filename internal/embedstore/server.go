package embedstore

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
)

// maxBulk and maxArgs bound what one command may ask the server to buffer.
const (
	maxBulk = 512 << 20
	maxArgs = 1 << 20
)

var errProtocol = errors.New("ERR Protocol error")

func (s *Store) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.cmu.Lock()
		select {
		case <-s.stop:
			s.cmu.Unlock()
			c.Close()
			return
		default:
		}
		s.open[c] = struct{}{}
		s.conn.Add(1)
		s.cmu.Unlock()
		go s.handle(c)
	}
}

// handle serves one connection. Commands are read and executed one by
// one; their replies are held until no more input is buffered (the end of
// a pipeline) and everything the journal holds so far is on disk, then
// sent together. So no reply, not even a read's, leaves before the writes
// it may reveal are durable, and a pipeline costs at most one fsync wait.
func (s *Store) handle(c net.Conn) {
	defer s.conn.Done()
	defer func() {
		s.cmu.Lock()
		delete(s.open, c)
		s.cmu.Unlock()
		c.Close()
	}()
	r := bufio.NewReaderSize(c, 64<<10)
	var out []byte
	var args [][]byte
	var scratch []byte
	var tx txState
	authed := s.opts.Password == ""
	n := 0
	for {
		var err error
		lim := limits{args: maxArgs, bulk: maxBulk}
		if !authed {
			lim = limits{args: preAuthArgs, bulk: preAuthBulk}
		}
		args, scratch, err = readCommand(r, args[:0], scratch[:0], lim)
		if err != nil {
			if errors.Is(err, errProtocol) {
				out = appendError(out, err.Error())
				n++
			}
			s.send(c, out, n)
			return
		}
		quit := len(args) > 0 && bytes.EqualFold(args[0], []byte("quit"))
		if len(args) > 0 {
			var handled bool
			if out, handled = s.connAuth(out, args, &authed); !handled {
				out = s.connCommand(out, args, &tx)
			}
		}
		n++
		if quit || r.Buffered() == 0 || len(out) > 1<<20 {
			if s.send(c, out, n) != nil || quit {
				return
			}
			out, n = out[:0], 0
		}
	}
}

// connCommand runs one command of an authenticated connection. SCRIPT
// KILL is answered here, without the store's lock, which the script it
// stops holds.
func (s *Store) connCommand(out []byte, args [][]byte, tx *txState) []byte {
	if len(args) == 2 && bytes.EqualFold(args[0], []byte("script")) && bytes.EqualFold(args[1], []byte("kill")) {
		return appendValue(out, s.lua.kill())
	}
	return tx.exec(s, out, args)
}

// send waits for the journal, then writes the n replies in out (or, if
// the journal failed, its error n times: none of them is acknowledged).
func (s *Store) send(c net.Conn, out []byte, n int) error {
	if n == 0 {
		return nil
	}
	if err := s.j.wait(s.j.current()); err != nil {
		out = out[:0]
		for range n {
			out = appendError(out, "ERR "+err.Error())
		}
	}
	_, err := c.Write(out)
	return err
}

// limits bound the arguments of one command and the size of each.
type limits struct{ args, bulk int }

// readCommand reads one command: a RESP array of bulk strings, or an
// inline command line (as typed into telnet). The args alias buf.
func readCommand(r *bufio.Reader, args [][]byte, buf []byte, lim limits) ([][]byte, []byte, error) {
	line, err := readLine(r)
	if err != nil {
		return args, buf, err
	}
	if len(line) == 0 {
		return readCommand(r, args, buf, lim)
	}
	var ends []int // end offset in buf of each arg
	if line[0] != '*' {
		for _, f := range bytes.Fields(line) {
			buf = append(buf, f...)
			ends = append(ends, len(buf))
		}
		return slice(args, buf, ends), buf, nil
	}
	count, err := strconv.Atoi(string(line[1:]))
	if err != nil || count > lim.args {
		return args, buf, errProtocol
	}
	for range count {
		line, err := readLine(r)
		if err != nil {
			return args, buf, err
		}
		if len(line) == 0 || line[0] != '$' {
			return args, buf, errProtocol
		}
		size, err := strconv.Atoi(string(line[1:]))
		if err != nil || size < 0 || size > lim.bulk {
			return args, buf, errProtocol
		}
		start := len(buf)
		buf = slices.Grow(buf, size+2)[:start+size+2]
		if _, err := io.ReadFull(r, buf[start:]); err != nil {
			return args, buf, err
		}
		buf = buf[:start+size]
		ends = append(ends, len(buf))
	}
	return slice(args, buf, ends), buf, nil
}

func slice(args [][]byte, buf []byte, ends []int) [][]byte {
	start := 0
	for _, e := range ends {
		args = append(args, buf[start:e:e])
		start = e
	}
	return args
}

func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errProtocol
	}
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

func appendError(b []byte, msg string) []byte {
	return append(append(append(b, '-'), msg...), '\r', '\n')
}

// txState is a connection's MULTI: the commands queued until EXEC, which
// runs them under one hold of the store's lock, so no other client's
// command comes between them (WATCH is not supported: nothing uses it).
type txState struct {
	on     bool
	failed bool // a queued command was unknown or had the wrong arity
	queue  [][][]byte
}

func (tx *txState) exec(s *Store, out []byte, args [][]byte) []byte {
	if len(args) == 0 {
		return out
	}
	name, c, known := s.lookupCommand(args[0])
	switch name {
	case "multi":
		if tx.on {
			return appendError(out, "ERR MULTI calls can not be nested")
		}
		*tx = txState{on: true}
		return appendValue(out, status("OK"))
	case "discard":
		if !tx.on {
			return appendError(out, "ERR DISCARD without MULTI")
		}
		*tx = txState{}
		return appendValue(out, status("OK"))
	case "exec":
		if !tx.on {
			return appendError(out, "ERR EXEC without MULTI")
		}
		queue, failed := tx.queue, tx.failed
		*tx = txState{}
		if failed {
			return appendError(out, "EXECABORT Transaction discarded because of previous errors.")
		}
		replies := make([]any, len(queue))
		s.mu.Lock()
		for i, q := range queue {
			replies[i] = s.call(q, false)
		}
		s.mu.Unlock()
		return appendValue(out, replies)
	}
	if !tx.on {
		return s.exec(out, args)
	}
	if !known || (c.arity > 0 && len(args) != c.arity) || (c.arity < 0 && len(args) < -c.arity) {
		tx.failed = true
		s.mu.Lock()
		v := s.call(args, false) // the same error an unqueued call gets
		s.mu.Unlock()
		return appendValue(out, v)
	}
	q := make([][]byte, len(args))
	for i, a := range args {
		q[i] = append([]byte(nil), a...) // args alias the read buffer
	}
	tx.queue = append(tx.queue, q)
	return appendValue(out, status("QUEUED"))
}
