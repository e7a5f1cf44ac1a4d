package localcreds

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	c, created, err := LoadOrCreate(dir)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: created %v, %v; want a new file", created, err)
	}
	fi, err := os.Stat(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v; want 0600", fi.Mode().Perm())
	}
	if len(c.StorePassword) < 40 || len(c.NATSPassword) < 40 || c.StorePassword == c.NATSPassword {
		t.Errorf("passwords are not 32 random bytes each")
	}
	again, created, err := LoadOrCreate(dir)
	if err != nil || created || again != c {
		t.Errorf("second LoadOrCreate: created %v, %v, same %v; want the first credentials", created, err, again == c)
	}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, c.StorePassword) || strings.Contains(s, c.NATSPassword) {
			t.Errorf("formatted credentials show a secret: %s", s)
		}
	}
	if err := os.Chmod(Path(dir), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable file: %v; want a refusal saying chmod 600", err)
	}
}

func TestNATS(t *testing.T) {
	with := t.TempDir()
	if _, _, err := LoadOrCreate(with); err != nil {
		t.Fatal(err)
	}
	without := t.TempDir()
	tests := []struct {
		url, dir, wantURL string
		wantCreds         bool
	}{
		{"", with, DefaultNATSURL, true},
		{"", without, DefaultNATSURL, false},
		{"nats://127.0.0.1:4223", with, "nats://127.0.0.1:4223", true},
		{"nats://localhost:4222", with, "nats://localhost:4222", true},
		{"127.0.0.1:4222", with, "127.0.0.1:4222", true},
		{"nats://[::1]:4222", with, "nats://[::1]:4222", true},
		{"nats://u:p@127.0.0.1:4222", with, "nats://u:p@127.0.0.1:4222", false},
		{"nats://nats.internal:4222", with, "nats://nats.internal:4222", false},
		{"nats://127.0.0.1:4222,nats://10.0.0.2:4222", with, "nats://127.0.0.1:4222,nats://10.0.0.2:4222", false},
	}
	for _, tt := range tests {
		got, opts, found, err := NATS(tt.url, tt.dir)
		if err != nil || got != tt.wantURL || found != tt.wantCreds || (len(opts) > 0) != tt.wantCreds {
			t.Errorf("NATS(%q, %s) = %q, %d options, found %v, %v; want %q, credentials %v",
				tt.url, tt.dir, got, len(opts), found, err, tt.wantURL, tt.wantCreds)
		}
	}
}

func TestRedis(t *testing.T) {
	dir := t.TempDir()
	c, _, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ url, dir, want string }{
		{"redis://127.0.0.1:36001", dir, "redis://:" + c.StorePassword + "@127.0.0.1:36001"},
		{"redis://127.0.0.1:36001/0", t.TempDir(), "redis://127.0.0.1:36001/0"},
		{"redis://:pw@127.0.0.1:36001", dir, "redis://:pw@127.0.0.1:36001"},
		{"redis://redis.internal:6379", dir, "redis://redis.internal:6379"},
		{"redis+cluster://127.0.0.1:7000", dir, "redis+cluster://127.0.0.1:7000"},
	}
	for _, tt := range tests {
		if got, err := Redis(tt.url, tt.dir); err != nil || got != tt.want {
			t.Errorf("Redis(%q) = %q, %v; want %q", tt.url, got, err, tt.want)
		}
	}
}
