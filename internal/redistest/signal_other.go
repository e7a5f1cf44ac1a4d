//go:build !unix

package redistest

// Pause needs SIGSTOP: tests that use it skip where it does not exist.
func (s *Server) Pause() { s.t.Skip("SIGSTOP needs a unix system") }

// Resume needs SIGCONT (see Pause).
func (s *Server) Resume() { s.t.Skip("SIGCONT needs a unix system") }
