package testenv

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

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

// StartRedisCluster starts n redis-server processes in cluster mode, joins
// them into one Redis Cluster with redis-cli (no replicas) and returns their
// addresses once every slot is served.
func StartRedisCluster(t testing.TB, n int) []string {
	t.Helper()
	servers := StartRedis(t, n, redisserver.Options{Args: []string{"--cluster-enabled", "yes", "--cluster-node-timeout", "2000"}})
	addrs := Addrs(servers)
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, a := range addrs {
			host, port, _ := strings.Cut(a, ":")
			info, _ := exec.Command("redis-cli", "-h", host, "-p", port, "cluster", "info").Output()
			if !strings.Contains(string(info), "cluster_state:ok") {
				ok = false
			}
		}
		if ok {
			return addrs
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the Redis Cluster did not reach cluster_state:ok")
	return nil
}
