package attribution

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeouts applied when REDIS_URL does not set them: a dead or unreachable
// Redis must fail a webhook quickly (ingest answers 503 and Meta retries)
// rather than hold Meta's connection open.
const (
	defaultDialTimeout  = 2 * time.Second
	defaultReadTimeout  = time.Second
	defaultWriteTimeout = time.Second
)

// NewClient returns a Redis client for a REDIS_URL:
//
//	redis://[user:password@]host:port[/db][?options]     single node
//	rediss://...                                         single node over TLS
//	unix://[user:password@]/path/redis.sock[?db=N]       single node, Unix socket
//	redis+cluster://[user:password@]h1:6379,h2:6379[?options]
//	rediss+cluster://...                                 Redis Cluster (seed nodes)
//	redis+sentinel://master[:password]@h1:26379,h2:26379[/db][?options]
//	rediss+sentinel://...                                Sentinel: the user part
//	                                                     names the master, the
//	                                                     password is the master's
//
// options are go-redis's URL options (dial_timeout, read_timeout, pool_size,
// ...). Host lists are comma-separated host:port pairs (IPv6 in brackets).
// Timeouts the URL leaves unset default to 2s (dial) and 1s (read, write);
// see failFast for retries.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	o, err := parseRedisURL(rawURL)
	switch {
	case err != nil:
		return nil, err
	case o.cluster != nil:
		return redis.NewClusterClient(o.cluster), nil
	case o.failover != nil:
		return redis.NewFailoverClient(o.failover), nil
	}
	return redis.NewClient(o.simple), nil
}

// clientOptions holds the options of exactly one kind of client.
type clientOptions struct {
	simple   *redis.Options
	cluster  *redis.ClusterOptions
	failover *redis.FailoverOptions
}

func parseRedisURL(rawURL string) (clientOptions, error) {
	var none clientOptions
	scheme, _, _ := strings.Cut(rawURL, "://")
	switch scheme {
	case "redis", "rediss", "unix":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return none, urlError(err)
		}
		failFast(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.DialerRetries, &o.MaxRetries)
		resp2(&o.Protocol)
		return clientOptions{simple: o}, nil
	case "redis+cluster", "rediss+cluster":
		u, err := multiHostURL(rawURL, "", "")
		if err != nil {
			return none, err
		}
		if u.Path != "" && u.Path != "/" && u.Path != "/0" {
			return none, errors.New("attribution: redis url: redis cluster has only database 0")
		}
		u.Path = ""
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return none, urlError(err)
		}
		failFast(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.DialerRetries, &o.MaxRetries)
		resp2(&o.Protocol)
		return clientOptions{cluster: o}, nil
	case "redis+sentinel", "rediss+sentinel":
		u, err := multiHostURL(rawURL, "master_name", "password")
		if err != nil {
			return none, err
		}
		if u.Query().Get("master_name") == "" {
			return none, errors.New("attribution: redis url: sentinel url names no master (redis+sentinel://master@host:port,...)")
		}
		o, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return none, urlError(err)
		}
		failFast(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.DialerRetries, &o.MaxRetries)
		resp2(&o.Protocol)
		return clientOptions{failover: o}, nil
	}
	if strings.Trim(scheme, "abcdefghijklmnopqrstuvwxyz+") != "" || len(scheme) > 20 {
		scheme = "" // not a scheme; perhaps "host:port" or "user:pass@host"
	}
	return none, fmt.Errorf("attribution: redis url: unknown scheme %q (want redis, rediss, unix, redis+cluster or redis+sentinel)", scheme)
}

// multiHostURL rewrites scheme+kind://[userinfo@]h1,h2,.../rest into the
// redis://[userinfo@]h1/rest?addr=h2&... form that go-redis parses. When
// userParam is set, the user part moves to that query parameter (and the
// password to passParam) instead. Errors never repeat the URL: it may hold a
// password.
func multiHostURL(rawURL, userParam, passParam string) (*url.URL, error) {
	scheme, rest, _ := strings.Cut(rawURL, "://")
	base, _, _ := strings.Cut(scheme, "+")
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo := ""
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, authority = authority[:at+1], authority[at+1:]
	}
	hosts := strings.Split(authority, ",")
	for _, h := range hosts {
		if h == "" {
			return nil, errors.New("attribution: redis url: empty host in host list")
		}
	}
	u, err := url.Parse(base + "://" + userinfo + hosts[0] + tail)
	if err != nil {
		return nil, errors.New("attribution: redis url: malformed")
	}
	q := u.Query()
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	if userParam != "" && u.User != nil {
		q.Set(userParam, u.User.Username())
		if pw, ok := u.User.Password(); ok {
			q.Set(passParam, pw)
		}
		u.User = nil
	}
	u.RawQuery = q.Encode()
	return u, nil
}

// urlError wraps a parse error unless it would repeat the URL, which may hold
// a password.
func urlError(err error) error {
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		return errors.New("attribution: redis url: malformed")
	}
	return fmt.Errorf("attribution: redis url: %w", err)
}

// failFast fills in what the URL left unset (zero): the timeouts above, one
// dial attempt per try (go-redis would make 5) and one retry per command (not
// 3), which is enough to replace a connection that died with a restarted
// server. An unreachable Redis then fails a call in about 2×DialTimeout at
// worst, and at once when the connection is refused.
// resp2 makes RESP2 the protocol unless the URL asks for another
// (protocol=3). Nothing here uses RESP3's push messages, and with RESP3
// go-redis checks each connection for pending pushes around every command:
// about 2% of ingest's CPU at its maximum (scripts/bench-profile.sh).
func resp2(protocol *int) {
	if *protocol == 0 {
		*protocol = 2
	}
}

func failFast(dial, read, write *time.Duration, dialAttempts, retries *int) {
	for _, d := range []struct {
		p *time.Duration
		v time.Duration
	}{{dial, defaultDialTimeout}, {read, defaultReadTimeout}, {write, defaultWriteTimeout}} {
		if *d.p == 0 {
			*d.p = d.v
		}
	}
	if *dialAttempts == 0 {
		*dialAttempts = 1
	}
	if *retries == 0 {
		*retries = 1
	}
}
