package ps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wrenml/wren/internal/redisacl"
)

// Grant is a job's own access to some models: a Redis user with a random
// password that may run only what a worker needs (read blocks, run the
// update scripts) on only those models' keys, on every shard. Workers
// connect with Options; the driver revokes it when the job ends. The
// server's own password never goes to the workers, whose inputs stay in
// the blob store after the job.
type Grant struct {
	// Options connect a worker to the granted models: the client's shards,
	// cluster and TLS settings, with the grant's user and password.
	Options Options
	acl     *redisacl.Grant
}

// Revoke deletes the grant's user from every shard, closing its open
// connections. Calling it again does nothing.
func (g *Grant) Revoke(ctx context.Context) error {
	if g == nil || g.acl == nil {
		return nil
	}
	return g.acl.Revoke(ctx)
}

// workerCommands are what a worker runs: reads, the update scripts and the
// commands those scripts call, which Redis checks against the user too.
var workerCommands = []string{"get", "mget", "getrange", "evalsha", "eval", "script|load", "script|exists", "exists", "set", "setrange", "incr"}

// clusterCommands are what a cluster client runs to find the slots.
var clusterCommands = []string{"cluster|slots", "cluster|shards", "cluster|nodes", "readonly", "asking", "command"}

// Grant creates a job's access to the named models, which must exist. The
// client's own user must be allowed the ACL commands (a server's default
// user is); where it is not and the client has no password of its own,
// there is nothing secret to keep and the grant carries no credentials.
func (s *Client) Grant(ctx context.Context, models ...string) (*Grant, error) {
	if len(models) == 0 {
		return nil, fmt.Errorf("%w: a grant of no model", ErrBadInput)
	}
	spec := redisacl.Spec{Commands: workerCommands}
	if s.opts.Cluster {
		spec.Commands = append(append([]string(nil), workerCommands...), clusterCommands...)
	}
	for _, name := range models {
		m, err := s.Model(ctx, name)
		if err != nil {
			return nil, err
		}
		spec.Keys = append(spec.Keys, modelKeyPatterns(name, m.blocks())...)
	}
	servers := make([]redisacl.Server, len(s.shards))
	for i, sh := range s.shards {
		servers[i] = redisacl.Server{C: sh.c}
	}
	g := &Grant{Options: s.Options()}
	g.Options.PoolSize = 0
	acl, err := redisacl.Create(ctx, servers, spec)
	switch {
	case err == nil:
		g.acl = acl
		g.Options.Username, g.Options.Password = acl.User, acl.Password
	case errors.Is(err, redisacl.ErrACL) && s.opts.Password == "":
		s.opts.Logger.Info("ps: the server does not let this client create users; its workers connect as it does (no password to keep)", "err", err)
		g.Options.Username, g.Options.Password = s.opts.Username, ""
	default:
		return nil, fmt.Errorf("ps: credentials for a job (the server's own password is never given to workers): %w", err)
	}
	return g, nil
}

// modelKeyPatterns match exactly a model's keys: its meta, version and
// push records, and its blocks 0 to blocks-1 (block numbers of each digit
// count, so that model "a" cannot reach the blocks of model "a/1").
func modelKeyPatterns(name string, blocks int) []string {
	pats := []string{"wps:{" + name + "}:*"}
	for d := 1; d <= len(fmt.Sprint(max(blocks-1, 0))); d++ {
		pats = append(pats, "wps:{"+name+"/"+strings.Repeat("[0-9]", d)+"}:*")
	}
	return pats
}
