package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/wrenml/wren/internal/redisserver"
	"github.com/wrenml/wren/ps"
)

// benchPS measures the parameter server against raw Redis on the same
// servers, for each shard count, and prints one JSON object per count.
func benchPS(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench ps", flag.ContinueOnError)
	shardList := fs.String("shards", "1,2", "comma-separated shard counts to measure (each starts its own redis-servers)")
	secs := fs.Float64("seconds", 2, "seconds per throughput measurement")
	clients := fs.Int("clients", 8, "concurrent client goroutines")
	modelLen := fs.Int("model", 1<<20, "model length in floats")
	bs := fs.Int("block", ps.DefaultBlockSize, "block size in floats")
	sparsePairs := fs.Int("sparse-pairs", 4096, "pairs per sparse push")
	sparseSpan := fs.Int("sparse-span", 65536, "the range (in floats) a sparse push's indices are drawn from")
	latN := fs.Int("latency-pushes", 3000, "synchronous 64-float pushes for the latency percentiles")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case !finitePositive(*secs) || *clients < 1:
		return fmt.Errorf("bench ps: -seconds %v, -clients %d: want a positive time and 1 client or more", *secs, *clients)
	case *modelLen < minBenchModel || *bs < 1 || *bs > min(*modelLen, 1<<20):
		return fmt.Errorf("bench ps: -model %d, -block %d: want a model of %d floats or more (the largest push measured) and a block of 1 to %d floats", *modelLen, *bs, minBenchModel, min(max(*modelLen, 1), 1<<20))
	case *sparsePairs < 1 || *sparseSpan < 1 || *latN < 1:
		return fmt.Errorf("bench ps: -sparse-pairs %d, -sparse-span %d, -latency-pushes %d: want 1 or more of each", *sparsePairs, *sparseSpan, *latN)
	}
	counts, err := positiveList("shards", *shardList)
	if err != nil {
		return fmt.Errorf("bench ps: %w", err)
	}
	dur := time.Duration(*secs * float64(time.Second))
	for _, k := range counts {
		res, err := benchPSShards(ctx, k, dur, *clients, *modelLen, *bs, *sparsePairs, *sparseSpan, *latN)
		if err != nil {
			return err
		}
		if err := printJSON(res); err != nil {
			return err
		}
	}
	return nil
}

// minBenchModel is the smallest model bench ps measures: its largest dense
// push is 16,384 floats.
const minBenchModel = 16384

// throughput runs fn from n goroutines for d and returns calls per second.
func throughput(ctx context.Context, n int, d time.Duration, fn func(rng *rand.Rand) error) (float64, error) {
	var calls atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for g := range n {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			for time.Now().Before(end) && ctx.Err() == nil {
				if err := fn(rng); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				calls.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(calls.Load()) / time.Since(start).Seconds(), firstErr
}

func benchPSShards(ctx context.Context, k int, d time.Duration, clients, n, bs, pairs, span, latN int) (map[string]any, error) {
	var addrs []string
	for range k {
		srv, err := redisserver.Start(ctx, redisserver.Options{})
		if err != nil {
			return nil, err
		}
		defer srv.Stop()
		addrs = append(addrs, srv.Addr)
	}
	s, err := ps.Open(ctx, ps.Options{Addrs: addrs, BlockSize: bs, PoolSize: 2 * clients})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	m, err := s.Create(ctx, "bench", n, ps.Normal(0, 0.01, 1))
	if err != nil {
		return nil, err
	}
	res := map[string]any{"shards": k, "model_floats": n, "block": bs, "clients": clients, "seconds": d.Seconds()}

	// Server-side cost of the scripts, from INFO commandstats: the floats a
	// shard's scripts update per second of its CPU, the ceiling for a push.
	stats := make([]*redis.Client, k)
	for i, a := range addrs {
		stats[i] = redis.NewClient(&redis.Options{Addr: a})
		defer stats[i].Close()
	}
	resetStats := func() {
		for _, c := range stats {
			c.ConfigResetStat(ctx)
		}
	}
	scriptSeconds := func() float64 {
		var usec float64
		for _, c := range stats {
			for _, l := range strings.Split(c.Info(ctx, "commandstats").Val(), "\n") {
				if strings.HasPrefix(l, "cmdstat_evalsha:") {
					for _, f := range strings.Split(strings.TrimSpace(strings.TrimPrefix(l, "cmdstat_evalsha:")), ",") {
						if v, ok := strings.CutPrefix(f, "usec="); ok {
							x, _ := strconv.ParseFloat(v, 64)
							usec += x
						}
					}
				}
			}
		}
		return usec / 1e6
	}
	dense := map[string]float64{}
	denseCalls := map[string]float64{}
	denseCPU := map[string]float64{}
	for _, size := range []int{64, 1024, 16384} {
		deltas := make([]float32, size)
		for i := range deltas {
			deltas[i] = 0.001
		}
		resetStats()
		t0 := time.Now()
		cps, err := throughput(ctx, clients, d, func(rng *rand.Rand) error {
			lo := rng.IntN(n-size+1) / size * size // aligned, as model slices usually are
			return m.Push(ctx, lo, deltas, -0.1)
		})
		if err != nil {
			return nil, err
		}
		floats := cps * float64(size) * time.Since(t0).Seconds()
		dense[strconv.Itoa(size)] = round(cps*float64(size), 4)
		denseCalls[strconv.Itoa(size)] = round(cps, 4)
		denseCPU[strconv.Itoa(size)] = round(floats/scriptSeconds(), 4)
	}
	res["dense_push_floats_per_s"] = dense
	res["dense_push_calls_per_s"] = denseCalls
	res["dense_script_floats_per_shard_cpu_s"] = denseCPU

	span = min(span, n)
	resetStats()
	t0 := time.Now()
	cps, err := throughput(ctx, clients, d, func(rng *rand.Rand) error {
		base := rng.IntN(n-span+1) / bs * bs
		idx := make([]int, pairs)
		del := make([]float32, pairs)
		for j := range idx {
			idx[j] = base + rng.IntN(span)
			del[j] = 0.001
		}
		return m.PushSparse(ctx, idx, del, -0.1)
	})
	if err != nil {
		return nil, err
	}
	res["sparse_push_pairs_per_s"] = round(cps*float64(pairs), 4)
	res["sparse_script_pairs_per_shard_cpu_s"] = round(cps*float64(pairs)*time.Since(t0).Seconds()/scriptSeconds(), 4)
	res["sparse_pairs_per_push"] = pairs
	res["sparse_span"] = span

	// Random coordinates of the whole model, 5,000 a request (a sparse
	// worker's gather; a scatter of as many pairs).
	const coords = 5000
	randIdx := func(rng *rand.Rand) []int {
		idx := make([]int, coords)
		for j := range idx {
			idx[j] = rng.IntN(n)
		}
		return idx
	}
	resetStats()
	t0 = time.Now()
	cps, err = throughput(ctx, clients, d, func(rng *rand.Rand) error {
		_, err := m.PullIndices(ctx, randIdx(rng))
		return err
	})
	if err != nil {
		return nil, err
	}
	res["sparse_pull_coords_per_s"] = round(cps*coords, 4)
	res["sparse_pull_coords_per_shard_cpu_s"] = round(cps*coords*time.Since(t0).Seconds()/scriptSeconds(), 4)
	ones := make([]float32, coords)
	for i := range ones {
		ones[i] = 0.001
	}
	resetStats()
	t0 = time.Now()
	cps, err = throughput(ctx, clients, d, func(rng *rand.Rand) error {
		return m.PushSparse(ctx, randIdx(rng), ones, -0.1)
	})
	if err != nil {
		return nil, err
	}
	res["sparse_push_random_pairs_per_s"] = round(cps*coords, 4)
	res["sparse_push_random_pairs_per_shard_cpu_s"] = round(cps*coords*time.Since(t0).Seconds()/scriptSeconds(), 4)
	res["sparse_coords_per_request"] = coords

	const pullLen = 65536
	pl := min(pullLen, n)
	cps, err = throughput(ctx, clients, d, func(rng *rand.Rand) error {
		lo := rng.IntN(n-pl+1) / bs * bs
		_, err := m.Pull(ctx, lo, lo+pl)
		return err
	})
	if err != nil {
		return nil, err
	}
	res["pull_floats_per_s"] = round(cps*float64(pl), 4)

	// Raw baselines on the same servers: one client per server, keys placed
	// by the same hash, blocks of the same bytes.
	raw := make([]*redis.Client, k)
	for i, a := range addrs {
		raw[i] = redis.NewClient(&redis.Options{Addr: a, PoolSize: 2 * clients})
		defer raw[i].Close()
	}
	nb := n / bs
	blk := make([]byte, 4*bs)
	rawShard := func(b int) int { return int(xxhash.Sum64String(strconv.Itoa(b)) % uint64(k)) }
	rawKey := func(b int) (string, *redis.Client) {
		return "raw:{" + strconv.Itoa(b) + "}", raw[rawShard(b)]
	}
	for b := range nb {
		key, c := rawKey(b)
		if err := c.Set(ctx, key, blk, 0).Err(); err != nil {
			return nil, err
		}
	}
	// GET+SET: the read-modify-write a client would do without scripts.
	cps, err = throughput(ctx, clients, d, func(rng *rand.Rand) error {
		key, c := rawKey(rng.IntN(nb))
		v, err := c.Get(ctx, key).Bytes()
		if err != nil {
			return err
		}
		return c.Set(ctx, key, v, 0).Err()
	})
	if err != nil {
		return nil, err
	}
	res["raw_getset_floats_per_s"] = round(cps*float64(bs), 4)
	// Plain GET of the same blocks a pull reads, pipelined per server.
	cps, err = throughput(ctx, clients, d, func(rng *rand.Rand) error {
		first := rng.IntN(nb - pl/bs + 1)
		return execAll(ctx, raw, func(pipes []redis.Pipeliner) {
			for b := first; b < first+pl/bs; b++ {
				key, _ := rawKey(b)
				pipes[rawShard(b)].Get(ctx, key)
			}
		})
	})
	if err != nil {
		return nil, err
	}
	res["raw_get_floats_per_s"] = round(cps*float64(pl), 4)

	// The same bytes as a sparse pull, raw: one GETRANGE of 4 bytes per
	// coordinate, pipelined per server.
	cps, err = throughput(ctx, clients, d, func(rng *rand.Rand) error {
		return execAll(ctx, raw, func(pipes []redis.Pipeliner) {
			for _, i := range randIdx(rng) {
				b := min(i/bs, nb-1)
				key, _ := rawKey(b)
				o := int64(4 * (i % bs))
				pipes[rawShard(b)].GetRange(ctx, key, o, o+3)
			}
		})
	})
	if err != nil {
		return nil, err
	}
	res["raw_getrange_coords_per_s"] = round(cps*coords, 4)
	res["sparse_pull_vs_raw_getrange"] = round(res["sparse_pull_coords_per_s"].(float64)/res["raw_getrange_coords_per_s"].(float64), 3)

	// Latency of a synchronous small push from one client.
	small := make([]float32, 64)
	lat := make([]time.Duration, 0, latN)
	rng := rand.New(rand.NewPCG(7, 7))
	for range latN {
		lo := rng.IntN(n-64+1) / 64 * 64
		t := time.Now()
		if err := m.Push(ctx, lo, small, 1); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	res["push_p50_us"] = round(float64(lat[len(lat)/2])/1e3, 4)
	res["push_p99_us"] = round(float64(lat[len(lat)*99/100])/1e3, 4)
	res["pull_vs_raw_get"] = round(res["pull_floats_per_s"].(float64)/res["raw_get_floats_per_s"].(float64), 3)
	res["dense1024_vs_raw_getset"] = round(dense["1024"]/res["raw_getset_floats_per_s"].(float64), 3)
	return res, nil
}

// execAll sends one pipeline per server, filled by fill, the servers in
// parallel.
func execAll(ctx context.Context, servers []*redis.Client, fill func(pipes []redis.Pipeliner)) error {
	pipes := make([]redis.Pipeliner, len(servers))
	for i, c := range servers {
		pipes[i] = c.Pipeline()
	}
	fill(pipes)
	var g errgroup.Group
	for _, p := range pipes {
		g.Go(func() error {
			_, err := p.Exec(ctx)
			return err
		})
	}
	return g.Wait()
}
