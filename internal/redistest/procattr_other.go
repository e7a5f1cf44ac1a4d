//go:build !linux

package redistest

import "os/exec"

// dieWithParent is a no-op where there is no parent-death signal.
func dieWithParent(*exec.Cmd) {}

// DieWithParent is a no-op where Pdeathsig does not exist.
func DieWithParent(cmd *exec.Cmd) { dieWithParent(cmd) }
