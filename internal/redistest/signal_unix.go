//go:build unix

package redistest

import "syscall"

// Pause stops the server with SIGSTOP: it holds its connections but neither
// reads nor answers, as a stalled machine would, until Resume.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	if s.cmd == nil || s.cmd.Process == nil {
		s.t.Fatalf("redis-server on %s: signal %v: not running", s.Addr, sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redis-server on %s: signal %v: %v", s.Addr, sig, err)
	}
}
