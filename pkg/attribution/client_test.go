package attribution

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseRedisURL(t *testing.T) {
	type want struct {
		kind       string // simple, cluster, failover
		addrs      []string
		network    string
		master     string
		user, pass string
		db         int
		tls        bool
		dial, read time.Duration
		proto      int // RESP version: 2 unless the URL asks for 3
	}
	tests := []struct {
		url  string
		want want
	}{
		{"redis://localhost:6379/2", want{kind: "simple", addrs: []string{"localhost:6379"}, network: "tcp", db: 2, dial: 2 * time.Second, read: time.Second, proto: 2}},
		{"rediss://u:p@r.example:6380", want{kind: "simple", addrs: []string{"r.example:6380"}, network: "tcp", user: "u", pass: "p", tls: true, dial: 2 * time.Second, read: time.Second, proto: 2}},
		{"unix:///run/redis.sock?db=3&read_timeout=5s", want{kind: "simple", addrs: []string{"/run/redis.sock"}, network: "unix", db: 3, dial: 2 * time.Second, read: 5 * time.Second, proto: 2}},
		{"redis+cluster://:pw@h1:6379,h2:6379,[::1]:7000?dial_timeout=3s", want{kind: "cluster", addrs: []string{"h1:6379", "h2:6379", "[::1]:7000"}, pass: "pw", dial: 3 * time.Second, read: time.Second, proto: 2}},
		{"rediss+cluster://h1:6379/0", want{kind: "cluster", addrs: []string{"h1:6379"}, tls: true, dial: 2 * time.Second, read: time.Second, proto: 2}},
		{"redis://localhost:6379?protocol=3", want{kind: "simple", addrs: []string{"localhost:6379"}, network: "tcp", dial: 2 * time.Second, read: time.Second, proto: 3}},
		{"redis+sentinel://mymaster:secret@s1:26379,s2:26379/1", want{kind: "failover", addrs: []string{"s1:26379", "s2:26379"}, master: "mymaster", pass: "secret", db: 1, dial: 2 * time.Second, read: time.Second, proto: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			o, err := parseRedisURL(tt.url)
			if err != nil {
				t.Fatalf("parseRedisURL: %v", err)
			}
			var got want
			switch {
			case o.simple != nil:
				s := o.simple
				got = want{kind: "simple", addrs: []string{s.Addr}, network: s.Network, user: s.Username, pass: s.Password,
					db: s.DB, tls: s.TLSConfig != nil, dial: s.DialTimeout, read: s.ReadTimeout, proto: s.Protocol}
			case o.cluster != nil:
				c := o.cluster
				got = want{kind: "cluster", addrs: c.Addrs, user: c.Username, pass: c.Password, tls: c.TLSConfig != nil,
					dial: c.DialTimeout, read: c.ReadTimeout, proto: c.Protocol}
			case o.failover != nil:
				f := o.failover
				got = want{kind: "failover", addrs: f.SentinelAddrs, master: f.MasterName, user: f.Username, pass: f.Password,
					db: f.DB, tls: f.TLSConfig != nil, dial: f.DialTimeout, read: f.ReadTimeout, proto: f.Protocol}
			}
			if d := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); d != "" {
				t.Errorf("parseRedisURL(%q) mismatch (-want +got):\n%s", tt.url, d)
			}
		})
	}
}

func TestParseRedisURLErrors(t *testing.T) {
	for _, u := range []string{
		"",
		"localhost:6379",
		"user:hunter2@localhost",
		"memcached://h:1",
		"redis+sentinel://s1:26379,s2:26379",   // no master
		"redis+cluster://h1:6379,,h2:6379",     // empty host
		"redis+cluster://h1:6379/3",            // cluster has db 0 only
		"redis://:hunter2@h:6379/0?bogus=1",    // unknown option
		"redis://:hunter2@h:port%zz/0",         // malformed
		"redis+sentinel://m:hunter2@s1:x%zz/0", // malformed
	} {
		_, err := NewClient(u)
		if err == nil {
			t.Errorf("NewClient(%q) = nil error; want one", u)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "hunter2") || !strings.HasPrefix(msg, "attribution: redis url: ") {
			t.Errorf("NewClient(%q) error = %q; want an attribution: redis url: error without the password", u, msg)
		}
	}
}

func TestNewClientKinds(t *testing.T) {
	tests := []struct {
		url, want string
	}{
		{"redis://h:1", "*redis.Client"},
		{"redis+cluster://h:1,h:2", "*redis.ClusterClient"},
		{"redis+sentinel://m@h:1", "*redis.Client"}, // go-redis's failover client
	}
	for _, tt := range tests {
		c, err := NewClient(tt.url)
		if err != nil {
			t.Fatalf("NewClient(%q): %v", tt.url, err)
		}
		if got := fmt.Sprintf("%T", c); got != tt.want {
			t.Errorf("NewClient(%q) is a %s; want %s", tt.url, got, tt.want)
		}
		c.Close()
	}
}
