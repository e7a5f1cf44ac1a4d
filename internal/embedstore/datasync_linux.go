package embedstore

import (
	"os"
	"syscall"
)

// datasync is fdatasync: the journal's writes land in zero-filled blocks,
// so there is no metadata to sync with them.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
