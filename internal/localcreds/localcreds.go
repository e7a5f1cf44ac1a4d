// Package localcreds keeps the credentials of the all-in-one's embedded
// servers, its store's password and its NATS user and password, in one
// file of its data directory (DATA_DIR/credentials.json, mode 0600), made
// on the first start and read on every later one, and finds them for the
// tools that talk to those servers (publish, ctm, sender dlq and redrive,
// replay's capture reader). The servers listen on the machine's loopback,
// where every local process can connect: the file's mode is what keeps
// other users out. Nothing here prints or logs a secret.
package localcreds

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"
)

// File is the credentials file's name in the data directory.
const File = "credentials.json"

// DefaultDataDir is DATA_DIR's default, for the all-in-one and the tools
// (relative: run them from the same directory).
const DefaultDataDir = "data"

// DefaultNATSURL is the embedded NATS's address with the all-in-one's
// default NATS_ADDR.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// natsUser is the user the all-in-one's NATS knows.
const natsUser = "ctmpipe"

// Credentials are the embedded servers' secrets. String never shows them.
type Credentials struct {
	StorePassword string `json:"store_password"` // Redis AUTH of the embedded store (user "default")
	NATSUser      string `json:"nats_user"`
	NATSPassword  string `json:"nats_password"`
}

// String names the file's fields, never their values.
func (c Credentials) String() string {
	return fmt.Sprintf("credentials{store_password_set: %t, nats_user_set: %t, nats_password_set: %t}",
		c.StorePassword != "", c.NATSUser != "", c.NATSPassword != "")
}

// GoString is String, so that %#v shows no secret either.
func (c Credentials) GoString() string { return c.String() }

// Path is the credentials file of a data directory.
func Path(dataDir string) string { return filepath.Join(dataDir, File) }

// Load reads the credentials of dataDir. A missing file is an error
// wrapping fs.ErrNotExist.
func Load(dataDir string) (Credentials, error) {
	var c Credentials
	path := Path(dataDir)
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("credentials: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("credentials: %s is not valid JSON (delete it to make new credentials)", path)
	}
	if c.StorePassword == "" || c.NATSUser == "" || c.NATSPassword == "" {
		return c, fmt.Errorf("credentials: %s lacks store_password, nats_user or nats_password (delete it to make new credentials)", path)
	}
	return c, nil
}

// LoadOrCreate returns the credentials of dataDir, making them on first
// use (created true). A file that other users may read is refused: its
// secrets may have been read.
func LoadOrCreate(dataDir string) (c Credentials, created bool, err error) {
	path := Path(dataDir)
	if fi, err := os.Stat(path); err == nil {
		if fi.Mode().Perm()&0o077 != 0 {
			return c, false, fmt.Errorf("credentials: %s has mode %v, readable by other users: run chmod 600 on it (or delete it to make new credentials, then restart every tool that uses them)",
				path, fi.Mode().Perm())
		}
		c, err := Load(dataDir)
		return c, false, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return c, false, fmt.Errorf("credentials: %w", err)
	}
	c = Credentials{StorePassword: newSecret(), NATSUser: natsUser, NATSPassword: newSecret()}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return c, false, err
	}
	if err := writeNew(path, append(b, '\n')); err != nil {
		return c, false, fmt.Errorf("credentials: %w", err)
	}
	return c, true, nil
}

// writeNew writes a new file of mode 0600 under a temporary name and
// renames it into place, so that a crash never leaves half a file.
func writeNew(path string, b []byte) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// newSecret is 32 random bytes, URL-safe base64 (it may go into a URL).
func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NATS returns the URL a tool connects to and the options that carry the
// all-in-one's credentials. rawURL is the tool's NATS_URL or flag, "" when
// neither was given: then DefaultNATSURL. The credentials of dataDir are
// used when the URL names a loopback host and no user (the all-in-one's
// NATS, or a local one without auth, which ignores them); a URL with
// credentials or on another host is used as given. A missing credentials
// file is not an error (found false): the NATS may need none.
func NATS(rawURL, dataDir string) (natsURL string, opts []nats.Option, found bool, err error) {
	natsURL = rawURL
	if natsURL == "" {
		natsURL = DefaultNATSURL
	}
	if !loopbackWithoutUser(natsURL) {
		return natsURL, nil, false, nil
	}
	c, err := Load(dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return natsURL, nil, false, nil
	}
	if err != nil {
		return natsURL, nil, false, err
	}
	return natsURL, []nats.Option{nats.UserInfo(c.NATSUser, c.NATSPassword)}, true, nil
}

// Exists reports whether dataDir holds a credentials file: a tool given no
// NATS_URL then talks to that all-in-one's NATS (DefaultNATSURL).
func Exists(dataDir string) bool {
	_, err := os.Stat(Path(dataDir))
	return err == nil
}

// DataDir is a tool's -data-dir default: DATA_DIR, else DefaultDataDir.
func DataDir(getenv func(string) string) string {
	if v := getenv("DATA_DIR"); v != "" {
		return v
	}
	return DefaultDataDir
}

// Redis returns rawURL (a REDIS_URL) with the all-in-one's store password
// in it when it is a redis:// URL of a loopback host without a password and
// dataDir holds credentials (the embedded store listens on a loopback port
// the all-in-one logs at start); any other URL as given.
func Redis(rawURL, dataDir string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "redis" || !IsLoopback(u.Hostname()) {
		return rawURL, nil
	}
	if _, set := u.User.Password(); set {
		return rawURL, nil
	}
	c, err := Load(dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return rawURL, nil
	}
	if err != nil {
		return "", err
	}
	u.User = url.UserPassword(u.User.Username(), c.StorePassword)
	return u.String(), nil
}

// Hint is what a tool adds to a failed connection to a loopback NATS.
func Hint(dataDir string, found bool) string {
	if found {
		return "with the credentials in " + Path(dataDir)
	}
	return "no " + Path(dataDir) + ": an all-in-one's NATS needs the credentials in its DATA_DIR (set -data-dir or DATA_DIR)"
}

// loopbackWithoutUser reports whether every server of a NATS URL list is
// on a loopback host and none carries a user.
func loopbackWithoutUser(list string) bool {
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || u.User != nil || !IsLoopback(u.Hostname()) {
			return false
		}
	}
	return true
}

// IsLoopback reports whether host (a name or an address) is this machine's
// loopback: "localhost" or an address in 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
