package redistest

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill redis-server when the test process
// dies (a timeout's panic, a SIGKILL), which skips t.Cleanup: otherwise the
// server is orphaned and keeps its port and any file descriptor it inherited.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// DieWithParent is dieWithParent for the other processes a test starts
// (test/'s ingest and sender binaries): an orphan of a timed-out test would
// hold the ports and the file descriptors it inherited, such as a
// flock(1) lock.
func DieWithParent(cmd *exec.Cmd) { dieWithParent(cmd) }
