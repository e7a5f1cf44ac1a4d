package registry

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DevKeyFile is the name of the development key file in a data directory.
const DevKeyFile = "registry.key"

// LoadOrCreateDevKey returns the REGISTRY_KEY value kept in dir/registry.key,
// creating the file (mode 0600, a fresh key with id "dev") on first use, so
// that a development setup (all-in-one) stores secrets without a setting and
// still reads them after a restart. created reports a new key; the caller
// says so in its log, with the path, never the key. Production sets
// REGISTRY_KEY instead: a key next to the data it protects protects little.
func LoadOrCreateDevKey(dir string) (value string, created bool, err error) {
	path := filepath.Join(dir, DevKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		v := strings.TrimSpace(string(b))
		if _, err := ParseKeyring(v); err != nil {
			return "", false, fmt.Errorf("registry: %s: %w", path, err)
		}
		return v, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("registry: development key: %w", err)
	}
	v, err := NewKey("dev")
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("registry: development key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("registry: development key: %w", err)
	}
	if _, err := f.WriteString(v + "\n"); err != nil {
		f.Close()
		return "", false, fmt.Errorf("registry: development key: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("registry: development key: %w", err)
	}
	return v, true, nil
}
