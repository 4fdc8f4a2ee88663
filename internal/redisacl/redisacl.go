// Package redisacl gives a job Redis credentials of its own: an ACL user
// with a random password, only the commands and key patterns the job
// needs, on every server the job uses, deleted when the job ends. A
// long-lived server's own password then never travels in a job's inputs
// (which stay in the blob store after the job).
//
// A user lives while its driver renews a lease key on the servers; a
// driver killed outright cannot delete its users, so Create first deletes
// every user whose lease has expired (Sweep).
package redisacl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// UserPrefix starts the name of every user this package creates.
const UserPrefix = "wren-job-"

// leasePrefix starts the keys that keep a user alive.
const leasePrefix = "wren:acl-lease:"

// DefaultLease is how long a user outlives its driver's last renewal.
const DefaultLease = 10 * time.Minute

// Spec is what a job may do.
type Spec struct {
	// Keys are the key patterns (Redis glob patterns) the user may touch.
	Keys []string
	// Commands are the commands (or "command|subcommand") it may run,
	// beside the connection's own (AUTH, HELLO, PING, CLIENT SETINFO on
	// servers that have it).
	Commands []string
	// Lease is how long the user outlives its driver's last renewal; 0
	// means DefaultLease. The driver renews it every Lease/5.
	Lease time.Duration
}

// Server is one place users are created: a Redis server, or a Redis
// Cluster (the user is created on every node: ACLs are per node).
type Server struct {
	C redis.UniversalClient
}

// Grant is a job's user on a set of servers. Revoke it when the job ends.
// It is safe for concurrent use.
type Grant struct {
	// User and Password authenticate the job's connections.
	User, Password string

	servers []Server
	lease   time.Duration
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	err     error
}

// ErrACL reports a server that refused to create the job's user (the
// driver's own user may not run ACL SETUSER).
var ErrACL = errors.New("redisacl: the server refused to create the job's Redis user")

// Create makes a user for one job on every server, after deleting the
// users of drivers that died (Sweep). The driver's clients (servers) must
// be allowed ACL SETUSER, ACL DELUSER and ACL USERS.
func Create(ctx context.Context, servers []Server, spec Spec) (*Grant, error) {
	if len(servers) == 0 {
		return nil, errors.New("redisacl: no server")
	}
	if spec.Lease <= 0 {
		spec.Lease = DefaultLease
	}
	for _, s := range servers {
		if err := sweep(ctx, s); err != nil {
			return nil, err
		}
	}
	var name, pw [16]byte
	if _, err := rand.Read(name[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, err
	}
	g := &Grant{User: UserPrefix + hex.EncodeToString(name[:8]), Password: hex.EncodeToString(pw[:]),
		servers: servers, lease: spec.Lease, stop: make(chan struct{}), done: make(chan struct{})}
	rules := []string{"reset", "on", ">" + g.Password, "resetchannels", "-@all", "+auth", "+hello", "+ping", "+client|setinfo"}
	for _, k := range spec.Keys {
		rules = append(rules, "~"+k)
	}
	for _, c := range spec.Commands {
		rules = append(rules, "+"+strings.ToLower(c))
	}
	for _, s := range servers {
		// The lease first: a user never exists without one.
		if err := s.C.Set(ctx, leasePrefix+g.User, "1", g.lease).Err(); err != nil {
			g.revoke(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("redisacl: lease of %s: %w", g.User, err)
		}
		err := eachNode(ctx, s, func(ctx context.Context, c *redis.Client) error {
			return setUser(ctx, c, g.User, rules)
		})
		if err != nil {
			g.revoke(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("%w: %w", ErrACL, err)
		}
	}
	go g.renew()
	return g, nil
}

// setUser runs ACL SETUSER, without the CLIENT SETINFO rule on servers
// that do not know the command (before Redis 7.2).
func setUser(ctx context.Context, c *redis.Client, user string, rules []string) error {
	args := []any{"acl", "setuser", user}
	for _, r := range rules {
		args = append(args, r)
	}
	err := c.Do(ctx, args...).Err()
	if err != nil && strings.Contains(err.Error(), "client|setinfo") {
		args = args[:0]
		args = append(args, "acl", "setuser", user)
		for _, r := range rules {
			if r != "+client|setinfo" {
				args = append(args, r)
			}
		}
		err = c.Do(ctx, args...).Err()
	}
	return err
}

// eachNode runs f on the server, or on every node of a cluster.
func eachNode(ctx context.Context, s Server, f func(ctx context.Context, c *redis.Client) error) error {
	switch c := s.C.(type) {
	case *redis.Client:
		return f(ctx, c)
	case *redis.ClusterClient:
		return c.ForEachShard(ctx, f)
	}
	return fmt.Errorf("redisacl: unsupported client %T", s.C)
}

// renew keeps the lease until Revoke.
func (g *Grant) renew() {
	defer close(g.done)
	t := time.NewTicker(g.lease / 5)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), g.lease/5)
			for _, s := range g.servers {
				s.C.PExpire(ctx, leasePrefix+g.User, g.lease)
			}
			cancel()
		}
	}
}

// Revoke deletes the user from every server (its open connections are
// closed by the server) and its lease. Calling it again does nothing.
func (g *Grant) Revoke(ctx context.Context) error {
	g.once.Do(func() {
		close(g.stop)
		<-g.done
		g.err = g.revoke(ctx)
	})
	return g.err
}

func (g *Grant) revoke(ctx context.Context) error {
	var errs []error
	for _, s := range g.servers {
		err := eachNode(ctx, s, func(ctx context.Context, c *redis.Client) error {
			return c.Do(ctx, "acl", "deluser", g.User).Err()
		})
		if err != nil {
			errs = append(errs, err)
		}
		if err := s.C.Del(ctx, leasePrefix+g.User).Err(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("redisacl: delete user %s: %w", g.User, err)
	}
	return nil
}

// Sweep deletes, on every server, the job users whose lease expired: users
// of drivers that died before they could delete them.
func Sweep(ctx context.Context, servers []Server) error {
	for _, s := range servers {
		if err := sweep(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func sweep(ctx context.Context, s Server) error {
	return eachNode(ctx, s, func(ctx context.Context, c *redis.Client) error {
		users, err := c.Do(ctx, "acl", "users").StringSlice()
		if err != nil {
			return fmt.Errorf("%w: ACL USERS: %w", ErrACL, err)
		}
		for _, u := range users {
			if !strings.HasPrefix(u, UserPrefix) {
				continue
			}
			n, err := s.C.Exists(ctx, leasePrefix+u).Result()
			if err != nil {
				return fmt.Errorf("redisacl: lease of %s: %w", u, err)
			}
			if n == 0 {
				if err := c.Do(ctx, "acl", "deluser", u).Err(); err != nil {
					return fmt.Errorf("redisacl: delete expired user %s: %w", u, err)
				}
			}
		}
		return nil
	})
}
