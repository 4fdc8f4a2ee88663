package mapreduce

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/redisacl"
	"github.com/wrenml/wren/internal/redisaddr"
)

// ErrCorrupt reports a shuffle or output object that is not what a map
// wrote.
var ErrCorrupt = errors.New("mapreduce: corrupt shuffle data")

// shuffle stores the map outputs: one object per map attempt, its
// partitions one after another.
type shuffle interface {
	put(ctx context.Context, key string, data []byte) error
	read(ctx context.Context, key string, off, n int64) ([]byte, error)
	deletePrefix(ctx context.Context, prefix string) error
	// free returns the bytes the store can still take, or -1 if unknown.
	free(ctx context.Context) (int64, error)
	// forWorkers returns the shuffle's URL for a job's workers, with
	// credentials of the job's own that reach only the keys under prefix
	// (a Redis shuffle: the server's own password never goes into the
	// tasks, which stay in the store), and what ends them.
	forWorkers(ctx context.Context, url, prefix string) (string, func(context.Context) error, error)
	close() error
}

// openShuffle opens a shuffle store: a blob store URL (file://, s3://, a
// directory) or redis://[user:password@]host:port[,host:port...].
func openShuffle(ctx context.Context, u string) (shuffle, error) {
	if strings.HasPrefix(u, "redis://") {
		return openRedis(ctx, u)
	}
	st, err := blob.Shared(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("mapreduce: shuffle store: %w", err)
	}
	return blobShuffle{st}, nil
}

type blobShuffle struct{ st blob.Store }

func (b blobShuffle) put(ctx context.Context, key string, data []byte) error {
	return blob.PutBytes(ctx, b.st, key, data, blob.PutOptions{Ephemeral: true})
}

func (b blobShuffle) read(ctx context.Context, key string, off, n int64) ([]byte, error) {
	data, size, err := blob.ReadRange(ctx, b.st, key, off, n)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != n {
		return nil, fmt.Errorf("%w: %s holds %d bytes, want [%d, +%d)", ErrCorrupt, key, size, off, n)
	}
	return data, nil
}

func (b blobShuffle) deletePrefix(ctx context.Context, prefix string) error {
	_, err := blob.DeletePrefix(ctx, b.st, prefix)
	return err
}

func (b blobShuffle) free(ctx context.Context) (int64, error) { return -1, nil }
func (b blobShuffle) forWorkers(ctx context.Context, url, prefix string) (string, func(context.Context) error, error) {
	return url, func(context.Context) error { return nil }, nil
}
func (b blobShuffle) close() error { return nil } // a shared store stays open

// redisShuffle keeps map outputs as Redis values, placed on the shards by
// redisaddr.ShardOf.
type redisShuffle struct {
	addr   redisaddr.Addr
	shards []redis.UniversalClient
}

// workerCommands are what a map or reduce call runs on a Redis shuffle.
var workerCommands = []string{"set", "getrange"}

func (r *redisShuffle) forWorkers(ctx context.Context, raw, prefix string) (string, func(context.Context) error, error) {
	servers := make([]redisacl.Server, len(r.shards))
	for i, c := range r.shards {
		servers[i] = redisacl.Server{C: c}
	}
	g, err := redisacl.Create(ctx, servers, redisacl.Spec{Keys: []string{prefix + "*"}, Commands: workerCommands})
	if errors.Is(err, redisacl.ErrACL) && r.addr.Password == "" {
		// Nothing secret to keep: the workers connect as the driver does.
		return raw, func(context.Context) error { return nil }, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("mapreduce: credentials for the job's shuffle (the server's own password is never given to workers): %w", err)
	}
	a := r.addr
	a.Username, a.Password = g.User, g.Password
	return a.String(), g.Revoke, nil
}

func openRedis(ctx context.Context, raw string) (*redisShuffle, error) {
	a, err := redisaddr.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("mapreduce: shuffle: %w", err)
	}
	if a.Cluster {
		return nil, fmt.Errorf("mapreduce: shuffle %s: a Redis Cluster is not supported (give the servers as shards)", a.Redacted())
	}
	r := &redisShuffle{addr: a, shards: a.Clients(redis.Options{MaxRetries: 2, DialerRetries: 2, DialTimeout: 2 * time.Second})}
	for i, c := range r.shards {
		if err := c.Ping(ctx).Err(); err != nil {
			r.close()
			return nil, fmt.Errorf("mapreduce: shuffle Redis %s: %w", a.Hosts[i], err)
		}
	}
	return r, nil
}

func (r *redisShuffle) shard(key string) redis.UniversalClient {
	return r.shards[redisaddr.ShardOf(key, len(r.shards))]
}

func (r *redisShuffle) put(ctx context.Context, key string, data []byte) error {
	if err := r.shard(key).Set(ctx, key, data, 0).Err(); err != nil {
		return fmt.Errorf("mapreduce: shuffle put %s: %w", key, err)
	}
	return nil
}

func (r *redisShuffle) read(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	b, err := r.shard(key).GetRange(ctx, key, off, off+n-1).Bytes()
	if err != nil {
		return nil, fmt.Errorf("mapreduce: shuffle read %s: %w", key, err)
	}
	if int64(len(b)) != n {
		return nil, fmt.Errorf("%w: %s gave %d bytes of [%d, +%d) (was the Redis server restarted or flushed?)", ErrCorrupt, key, len(b), off, n)
	}
	return b, nil
}

func (r *redisShuffle) deletePrefix(ctx context.Context, prefix string) error {
	for _, c := range r.shards {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 500 {
				c.Unlink(ctx, batch...)
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			c.Unlink(ctx, batch...)
		}
		if err := iter.Err(); err != nil {
			return err
		}
	}
	return nil
}

// free sums, over the shards, maxmemory minus used memory (a shard
// without maxmemory counts as unbounded).
func (r *redisShuffle) free(ctx context.Context) (int64, error) {
	var total int64
	for i, c := range r.shards {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return 0, fmt.Errorf("mapreduce: shuffle Redis %s: %w", r.addr.Hosts[i], err)
		}
		var used, maxm int64
		for _, line := range strings.Split(info, "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "used_memory":
				used = n
			case "maxmemory":
				maxm = n
			}
		}
		if maxm == 0 {
			return -1, nil
		}
		total += max(maxm-used, 0)
	}
	return total, nil
}

func (r *redisShuffle) close() error {
	for _, c := range r.shards {
		c.Close()
	}
	return nil
}
