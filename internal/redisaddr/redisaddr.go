// Package redisaddr is the one place a Redis address is read: a URL
//
//	redis://[user:password@]host:port[,host:port...][?cluster=1&tls=1]
//
// (rediss:// means tls=1), naming one server, several servers used as
// shards, or the seeds of a Redis Cluster; and the one function that
// places a key on a shard. The parameter server (ps), the MapReduce Redis
// shuffle and the command line all use it.
package redisaddr

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/redis/go-redis/v9"
)

// Addr is a parsed Redis address.
type Addr struct {
	// Hosts are host:port, one a shard (or the cluster's seeds).
	Hosts []string
	// Username and Password authenticate (an ACL user, or requirepass
	// with no username).
	Username, Password string
	// Cluster treats Hosts as the seeds of one Redis Cluster.
	Cluster bool
	// TLS connects with TLS (the system's roots).
	TLS bool
}

// ErrBadURL reports a Redis URL that cannot be used.
var ErrBadURL = errors.New("redisaddr: bad Redis URL")

// Parse reads a Redis URL; a parameter it does not know, or one given
// twice, is an error.
func Parse(raw string) (Addr, error) {
	var a Addr
	// The host list is taken apart here (url.Parse reads one host, and not
	// several IPv6 literals).
	hosts := ""
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		auth := rest[:end]
		at := strings.LastIndexByte(auth, '@')
		hosts = auth[at+1:]
		raw = raw[:i+3] + auth[:at+1] + "h" + rest[end:]
	}
	u, err := url.Parse(raw)
	if err != nil {
		return a, fmt.Errorf("%w: %v", ErrBadURL, redact(err.Error()))
	}
	switch u.Scheme {
	case "redis":
	case "rediss":
		a.TLS = true
	default:
		return a, fmt.Errorf("%w: scheme %q (want redis:// or rediss://)", ErrBadURL, u.Scheme)
	}
	if u.Path != "" && u.Path != "/" || u.Fragment != "" || u.Opaque != "" {
		return a, fmt.Errorf("%w: want redis://[user:password@]host:port[,host:port]", ErrBadURL)
	}
	if u.User != nil {
		a.Username = u.User.Username()
		a.Password, _ = u.User.Password()
		if _, hasPW := u.User.Password(); !hasPW {
			// redis://password@host, as go-redis reads it.
			a.Username, a.Password = "", u.User.Username()
		}
	}
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			continue
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" || strings.IndexFunc(host, badHostRune) >= 0 {
			return a, fmt.Errorf("%w: host %q: want host:port", ErrBadURL, h)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return a, fmt.Errorf("%w: host %q: bad port", ErrBadURL, h)
		}
		a.Hosts = append(a.Hosts, h)
	}
	if len(a.Hosts) == 0 {
		return a, fmt.Errorf("%w: no host", ErrBadURL)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return a, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	for k, v := range q {
		if len(v) != 1 {
			return a, fmt.Errorf("%w: parameter %q given %d times", ErrBadURL, k, len(v))
		}
		b, err := strconv.ParseBool(v[0])
		switch {
		case k != "cluster" && k != "tls":
			return a, fmt.Errorf("%w: unknown parameter %q (known: cluster, tls)", ErrBadURL, k)
		case err != nil:
			return a, fmt.Errorf("%w: %s=%q: want 1 or 0", ErrBadURL, k, v[0])
		case k == "cluster":
			a.Cluster = b
		default:
			a.TLS = a.TLS || b
		}
	}
	return a, nil
}

// badHostRune is a rune no host name or IP address holds.
func badHostRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' || r == ':')
}

// String formats the address as the URL Parse reads back.
func (a Addr) String() string {
	u := url.URL{Scheme: "redis", Host: strings.Join(a.Hosts, ",")}
	switch {
	case a.Username != "":
		u.User = url.UserPassword(a.Username, a.Password)
	case a.Password != "":
		u.User = url.User(a.Password)
	}
	q := url.Values{}
	if a.Cluster {
		q.Set("cluster", "1")
	}
	if a.TLS {
		q.Set("tls", "1")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Redacted is String without the password, for logs and errors.
func (a Addr) Redacted() string {
	if a.Password != "" {
		a.Password = "xxxxx"
	}
	return a.String()
}

// Clients connects to the address: one client per shard, or one cluster
// client; base gives the other options (timeouts, retries, pool).
func (a Addr) Clients(base redis.Options) []redis.UniversalClient {
	var tc *tls.Config
	if a.TLS {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if base.TLSConfig != nil {
		tc = base.TLSConfig
	}
	if a.Cluster {
		return []redis.UniversalClient{redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: a.Hosts, Username: a.Username, Password: a.Password, TLSConfig: tc,
			DialTimeout: base.DialTimeout, ReadTimeout: base.ReadTimeout, WriteTimeout: base.WriteTimeout,
			PoolSize: base.PoolSize, MaxRetries: base.MaxRetries,
		})}
	}
	out := make([]redis.UniversalClient, len(a.Hosts))
	for i, h := range a.Hosts {
		o := base
		o.Addr, o.Username, o.Password, o.TLSConfig = h, a.Username, a.Password, tc
		out[i] = redis.NewClient(&o)
	}
	return out
}

// ShardOf places a key on one of n shards: by the hash of its tag (the
// part between the first { and the next }, as Redis Cluster does), else
// of the whole key.
func ShardOf(key string, n int) int {
	if n <= 1 {
		return 0
	}
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(xxhash.Sum64String(key) % uint64(n))
}

// redact hides a password in a url.Parse error.
func redact(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.Index(s[i+3:], "@"); j >= 0 {
			return s[:i+3] + "xxxxx" + s[i+3+j:]
		}
	}
	return s
}
