package registry

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadOrCreateDevKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	v, created, err := LoadOrCreateDevKey(dir)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateDevKey = %v, %v; want a new key", created, err)
	}
	if k, err := ParseKeyring(v); err != nil || k.CurrentID() != "dev" {
		t.Fatalf("dev key does not parse as id dev: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, DevKeyFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v; want 0600", fi.Mode().Perm())
	}
	again, created, err := LoadOrCreateDevKey(dir)
	if err != nil || created || again != v {
		t.Fatalf("second LoadOrCreateDevKey = %v, %v; want the same key", created, err)
	}
	os.WriteFile(filepath.Join(dir, DevKeyFile), []byte("dev:short"), 0o600)
	if _, _, err := LoadOrCreateDevKey(dir); err == nil {
		t.Fatal("a corrupt key file was accepted")
	}
}
