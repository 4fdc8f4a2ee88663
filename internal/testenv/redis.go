package testenv

import (
	"context"
	"testing"

	"github.com/wrenml/wren/internal/redisserver"
)

// StartRedis starts n redis-server processes on free loopback ports and
// stops them when the test ends. A missing redis-server fails the test: CI
// installs it, and a skipped test would hide that.
func StartRedis(t testing.TB, n int, opts redisserver.Options) []*redisserver.Server {
	t.Helper()
	var out []*redisserver.Server
	for range n {
		s, err := redisserver.Start(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		out = append(out, s)
	}
	return out
}

// Addrs returns the servers' addresses.
func Addrs(servers []*redisserver.Server) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = s.Addr
	}
	return out
}
