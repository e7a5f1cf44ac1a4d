//go:build !linux

package embedstore

import "os"

func datasync(f *os.File) error { return f.Sync() }
