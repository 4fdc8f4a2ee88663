package redisacl_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wrenml/wren/internal/redisacl"
	"github.com/wrenml/wren/internal/redisserver"
	"github.com/wrenml/wren/internal/testenv"
)

const serverPassword = "the-servers-own-secret"

var spec = redisacl.Spec{
	Keys:     []string{"job:{a}:*", "job:b"},
	Commands: []string{"get", "set", "incr", "evalsha", "eval", "script|load"},
}

// TestGrant: the job's user does what its spec allows and nothing else
// (other keys, other commands, other keys from inside a script), on a
// server protected by its own password; revoked, it no longer
// authenticates.
func TestGrant(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartRedis(t, 1, redisserver.Options{Password: serverPassword})[0]
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: serverPassword})
	defer admin.Close()
	g, err := redisacl.Create(ctx, []redisacl.Server{{C: admin}}, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(g.User, redisacl.UserPrefix) || len(g.Password) < 32 || strings.Contains(g.Password, serverPassword) {
		t.Fatalf("user %q, password %q", g.User, g.Password)
	}
	job := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: g.User, Password: g.Password, MaxRetries: -1})
	defer job.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	denied := func(what string, err error) {
		t.Helper()
		if err == nil || !(strings.Contains(err.Error(), "NOPERM") || strings.Contains(err.Error(), "can't access")) {
			t.Errorf("%s: %v, want NOPERM", what, err)
		}
	}
	must(job.Ping(ctx).Err())
	must(job.Set(ctx, "job:{a}:1", "x", 0).Err())
	must(job.Set(ctx, "job:b", "y", 0).Err())
	if v, err := job.Get(ctx, "job:{a}:1").Result(); err != nil || v != "x" {
		t.Fatalf("get %q, %v", v, err)
	}
	must(redis.NewScript(`return redis.call('INCR', KEYS[1])`).Run(ctx, job, []string{"job:{a}:n"}).Err())
	denied("another key", job.Set(ctx, "job:c", "z", 0).Err())
	denied("another key by pattern", job.Get(ctx, "job:{ab}:1").Err())
	denied("a command not granted", job.Del(ctx, "job:b").Err())
	denied("CONFIG", job.ConfigGet(ctx, "requirepass").Err())
	denied("ACL", job.Do(ctx, "acl", "users").Err())
	denied("FLUSHALL", job.FlushAll(ctx).Err())
	denied("KEYS", job.Keys(ctx, "*").Err())
	// A script reaches only the keys the user may touch, whatever KEYS says.
	denied("a script writing another key", redis.NewScript(`return redis.call('SET', 'secret', '1')`).Run(ctx, job, []string{"job:b"}).Err())

	must(g.Revoke(ctx))
	must(g.Revoke(ctx)) // twice: nothing
	again := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: g.User, Password: g.Password, MaxRetries: -1})
	defer again.Close()
	if err := again.Ping(ctx).Err(); err == nil {
		t.Fatal("a revoked user still authenticates")
	}
	if err := job.Get(ctx, "job:b").Err(); err == nil {
		t.Fatal("a revoked user's open connection still works")
	}
}

// TestSweep: the users of a driver that died (its lease no longer renewed)
// are deleted by the next Create; a live grant's user survives it.
func TestSweep(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartRedis(t, 1, redisserver.Options{Password: serverPassword})[0]
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: serverPassword})
	defer admin.Close()
	servers := []redisacl.Server{{C: admin}}
	live, err := redisacl.Create(ctx, servers, redisacl.Spec{Keys: []string{"x"}, Commands: []string{"get"}, Lease: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Revoke(ctx)
	// A dead driver's user: no lease.
	if err := admin.Do(ctx, "acl", "setuser", redisacl.UserPrefix+"dead", "on", ">pw", "+get").Err(); err != nil {
		t.Fatal(err)
	}
	// Outlive the live grant's lease twice over: its renewals keep it.
	time.Sleep(1200 * time.Millisecond)
	g, err := redisacl.Create(ctx, servers, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Revoke(ctx)
	users, err := admin.Do(ctx, "acl", "users").StringSlice()
	if err != nil {
		t.Fatal(err)
	}
	has := func(u string) bool {
		for _, x := range users {
			if x == u {
				return true
			}
		}
		return false
	}
	if has(redisacl.UserPrefix+"dead") || !has(live.User) || !has(g.User) || !has("default") {
		t.Fatalf("users after the sweep: %v", users)
	}
}

// TestGrantCluster: on a Redis Cluster the user exists on every node
// (ACLs are per node), so a cluster client reaches keys in every slot;
// revoked, it is gone from every node.
func TestGrantCluster(t *testing.T) {
	ctx := context.Background()
	addrs := testenv.StartRedisCluster(t, 3)
	admin := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer admin.Close()
	g, err := redisacl.Create(ctx, []redisacl.Server{{C: admin}}, redisacl.Spec{Keys: []string{"k:*"},
		Commands: []string{"get", "set", "cluster|slots", "cluster|shards", "cluster|nodes", "readonly", "asking", "command"}})
	if err != nil {
		t.Fatal(err)
	}
	job := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Username: g.User, Password: g.Password})
	defer job.Close()
	for i := range 50 { // keys over every node's slots
		if err := job.Set(ctx, "k:"+strings.Repeat("x", i), i, 0).Err(); err != nil {
			t.Fatalf("set on the cluster: %v", err)
		}
	}
	if err := g.Revoke(ctx); err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a, Username: g.User, Password: g.Password, MaxRetries: -1})
		if err := c.Ping(ctx).Err(); err == nil {
			t.Errorf("node %s still authenticates the revoked user", a)
		}
		c.Close()
	}
}
