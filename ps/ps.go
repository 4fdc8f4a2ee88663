package ps

import (
	"context"
	"crypto/tls"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/wrenml/wren/internal/redisserver"
)

//go:generate go run ./lua/gen lua

//go:embed lua/dense_add.lua
var denseAddSrc string

//go:embed lua/sparse_add.lua
var sparseAddSrc string

var (
	denseAdd  = redis.NewScript(denseAddSrc)
	sparseAdd = redis.NewScript(sparseAddSrc)
	scripts   = []*redis.Script{denseAdd, sparseAdd}
)

// Errors returned (wrapped) by the package; check them with errors.Is.
var (
	ErrNoModel     = errors.New("ps: no such model")
	ErrModelExists = errors.New("ps: model already exists")
	ErrBadInput    = errors.New("ps: bad input")
	ErrCorrupt     = errors.New("ps: stored block has the wrong length")
)

// DefaultBlockSize is the number of floats per block when Options.BlockSize is 0.
const DefaultBlockSize = 1024

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	// Addrs are the Redis servers ("host:port"), one shard each; blocks are
	// placed by hashing their key's tag, so every client must list the same
	// servers in the same order. Empty means: start a local redis-server on a
	// free loopback port, stopped by Close.
	Addrs []string
	// Cluster treats Addrs as seeds of one Redis Cluster, which places the
	// blocks by hash slot.
	Cluster bool
	// BlockSize is the number of floats per block for models this Server
	// creates; 0 means DefaultBlockSize. Existing models keep theirs.
	BlockSize int
	// Username and Password authenticate (ACL user, or requirepass).
	Username, Password string
	// TLSConfig, when set, connects with TLS.
	TLSConfig *tls.Config
	// DialTimeout, ReadTimeout and WriteTimeout default to 5s, 3s and 3s.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// PoolSize is the connection pool size per shard; 0 means 10 per CPU.
	PoolSize int
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
}

// Server is a client of a sharded parameter server. It is safe for
// concurrent use.
type Server struct {
	opts   Options
	shards []*shard
	local  *redisserver.Server
}

type shard struct {
	addr string
	c    redis.UniversalClient
}

// Open connects to the shards (or starts a local redis-server), checks that
// each answers and loads the scripts.
func Open(ctx context.Context, opts Options) (*Server, error) {
	if opts.BlockSize == 0 {
		opts.BlockSize = DefaultBlockSize
	}
	if opts.BlockSize < 1 || opts.BlockSize > 1<<20 {
		return nil, fmt.Errorf("%w: block size %d (1..%d)", ErrBadInput, opts.BlockSize, 1<<20)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts}
	if len(opts.Addrs) == 0 {
		l, err := redisserver.Start(ctx, redisserver.Options{})
		if err != nil {
			return nil, fmt.Errorf("ps: no Redis address given and no local server: %w", err)
		}
		s.local = l
		opts.Addrs = []string{l.Addr}
		s.opts.Addrs = opts.Addrs
		opts.Logger.Info("ps: started a local redis-server", "addr", l.Addr)
	}
	if opts.Cluster {
		c := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: opts.Addrs, Username: opts.Username, Password: opts.Password, TLSConfig: opts.TLSConfig,
			DialTimeout: opts.DialTimeout, ReadTimeout: opts.ReadTimeout, WriteTimeout: opts.WriteTimeout,
			PoolSize: opts.PoolSize, MaxRetries: -1,
		})
		s.shards = []*shard{{addr: "cluster " + strings.Join(opts.Addrs, ","), c: c}}
	} else {
		for _, a := range opts.Addrs {
			c := redis.NewClient(&redis.Options{
				Addr: a, Username: opts.Username, Password: opts.Password, TLSConfig: opts.TLSConfig,
				DialTimeout: opts.DialTimeout, ReadTimeout: opts.ReadTimeout, WriteTimeout: opts.WriteTimeout,
				PoolSize: opts.PoolSize,
				// A push must never be applied twice: no automatic retries.
				MaxRetries: -1,
			})
			s.shards = append(s.shards, &shard{addr: a, c: c})
		}
	}
	for _, sh := range s.shards {
		if err := sh.c.Ping(ctx).Err(); err != nil {
			s.Close()
			return nil, fmt.Errorf("ps: shard %s: %w", sh.addr, err)
		}
		if err := sh.load(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (sh *shard) load(ctx context.Context) error {
	for _, sc := range scripts {
		if err := sc.Load(ctx, sh.c).Err(); err != nil {
			return fmt.Errorf("ps: shard %s: load script: %w", sh.addr, err)
		}
	}
	return nil
}

// Addrs returns the shards' addresses (with a local server, its address).
func (s *Server) Addrs() []string { return append([]string(nil), s.opts.Addrs...) }

// Close closes the connections and stops a local server Open started.
func (s *Server) Close() error {
	var err error
	for _, sh := range s.shards {
		if e := sh.c.Close(); e != nil && err == nil {
			err = e
		}
	}
	if s.local != nil {
		s.local.Stop()
	}
	return err
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._:/-]{1,200}$`)

func checkName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: model name %q (letters, digits and ._:/- only, at most 200)", ErrBadInput, name)
	}
	return nil
}

func blockKey(name string, b int) string { return "wps:{" + name + "/" + strconv.Itoa(b) + "}:w" }
func metaKey(name string) string         { return "wps:{" + name + "}:meta" }
func versionKey(name string) string      { return "wps:{" + name + "}:version" }

// shardOf places a key by its hash tag.
func (s *Server) shardOf(key string) int {
	if len(s.shards) == 1 {
		return 0
	}
	i, j := strings.IndexByte(key, '{'), strings.IndexByte(key, '}')
	return int(xxhash.Sum64String(key[i+1:j]) % uint64(len(s.shards)))
}

type meta struct {
	Len     int       `json:"len"`
	Block   int       `json:"block"`
	Created time.Time `json:"created"`
}

// Init fills a new model's values.
type Init func(dst []float32) error

// Zeros initialises every value to 0.
var Zeros Init = func(dst []float32) error { clear(dst); return nil }

// Normal draws values from N(mean, std²) with a PCG generator seeded by seed:
// the same seed gives the same model, whatever the block size.
func Normal(mean, std float64, seed uint64) Init {
	return func(dst []float32) error {
		r := newRand(seed)
		for i := range dst {
			dst[i] = float32(mean + std*r.NormFloat64())
		}
		return nil
	}
}

// FromSlice copies v, which must have the model's length.
func FromSlice(v []float32) Init {
	return func(dst []float32) error {
		if len(v) != len(dst) {
			return fmt.Errorf("%w: FromSlice of %d values for a model of %d", ErrBadInput, len(v), len(dst))
		}
		copy(dst, v)
		return nil
	}
}

// Model is a handle on a stored model. It is safe for concurrent use.
type Model struct {
	s    *Server
	name string
	n    int
	bs   int
}

// Name returns the model's name.
func (m *Model) Name() string { return m.name }

// Len returns the number of floats.
func (m *Model) Len() int { return m.n }

// BlockSize returns the floats per block.
func (m *Model) BlockSize() int { return m.bs }

func (m *Model) blocks() int { return (m.n + m.bs - 1) / m.bs }

func (m *Model) blockLen(b int) int { return min(m.bs, m.n-b*m.bs) }

// Create makes a model of n floats initialised by init. It fails with
// ErrModelExists if the name is taken.
func (s *Server) Create(ctx context.Context, name string, n int, init Init) (*Model, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, fmt.Errorf("%w: model %q of length %d", ErrBadInput, name, n)
	}
	v := make([]float32, n)
	if err := init(v); err != nil {
		return nil, fmt.Errorf("ps: create %q: %w", name, err)
	}
	if err := checkFinite(v, 0); err != nil {
		return nil, fmt.Errorf("ps: create %q: initial values: %w", name, err)
	}
	return s.create(ctx, name, v, 0)
}

func (s *Server) create(ctx context.Context, name string, v []float32, version int64) (*Model, error) {
	m := &Model{s: s, name: name, n: len(v), bs: s.opts.BlockSize}
	mb, _ := json.Marshal(meta{Len: m.n, Block: m.bs, Created: time.Now().UTC()})
	msh := s.shards[s.shardOf(metaKey(name))]
	ok, err := msh.c.SetNX(ctx, metaKey(name), mb, 0).Result()
	if err != nil {
		return nil, fmt.Errorf("ps: create %q on shard %s: %w", name, msh.addr, err)
	}
	if !ok {
		return nil, fmt.Errorf("ps: create %q: %w", name, ErrModelExists)
	}
	ops := make([]op, 0, m.blocks())
	for b := range m.blocks() {
		lo := b * m.bs
		ops = append(ops, single(b, blockKey(name, b), func(ctx context.Context, p redis.Pipeliner, key string) redis.Cmder {
			return p.Set(ctx, key, encode(v[lo:lo+m.blockLen(b)]), 0)
		}))
	}
	ops = append(ops, single(-1, versionKey(name), func(ctx context.Context, p redis.Pipeliner, key string) redis.Cmder {
		return p.Set(ctx, key, version, 0)
	}))
	if err := s.exec(ctx, "create "+name, ops); err != nil {
		s.Delete(context.WithoutCancel(ctx), name)
		return nil, err
	}
	return m, nil
}

// Model opens an existing model.
func (s *Server) Model(ctx context.Context, name string) (*Model, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	msh := s.shards[s.shardOf(metaKey(name))]
	b, err := msh.c.Get(ctx, metaKey(name)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("ps: model %q: %w", name, ErrNoModel)
	}
	if err != nil {
		return nil, fmt.Errorf("ps: model %q on shard %s: %w", name, msh.addr, err)
	}
	var md meta
	if err := json.Unmarshal(b, &md); err != nil || md.Len <= 0 || md.Block <= 0 {
		return nil, fmt.Errorf("ps: model %q: %w: metadata %q", name, ErrCorrupt, b)
	}
	return &Model{s: s, name: name, n: md.Len, bs: md.Block}, nil
}

// Delete removes a model's blocks, version and metadata. Deleting a missing
// model is not an error.
func (s *Server) Delete(ctx context.Context, name string) error {
	m, err := s.Model(ctx, name)
	if errors.Is(err, ErrNoModel) {
		return nil
	}
	if err != nil {
		return err
	}
	ops := make([]op, 0, m.blocks()+2)
	del := func(ctx context.Context, p redis.Pipeliner, key string) redis.Cmder { return p.Del(ctx, key) }
	for b := range m.blocks() {
		ops = append(ops, single(b, blockKey(name, b), del))
	}
	ops = append(ops, single(-1, versionKey(name), del), single(-1, metaKey(name), del))
	return s.exec(ctx, "delete "+name, ops)
}

// op is one command of a request, placed on the shard of its first key.
type op struct {
	blocks []int // the blocks it touches; nil for model-level keys
	keys   []string
	run    func(ctx context.Context, p redis.Pipeliner, keys []string) redis.Cmder
	cmd    redis.Cmder
}

// single makes an op on one key (block -1: a model-level key).
func single(block int, key string, run func(ctx context.Context, p redis.Pipeliner, key string) redis.Cmder) op {
	o := op{keys: []string{key}, run: func(ctx context.Context, p redis.Pipeliner, keys []string) redis.Cmder { return run(ctx, p, keys[0]) }}
	if block >= 0 {
		o.blocks = []int{block}
	}
	return o
}

// maxBlocksPerCall bounds the blocks one script call updates, so that no
// call blocks its server for long (about 1 ms at 8 blocks of 1024 floats).
const maxBlocksPerCall = 8

// blockArgs are one block's arguments to a script.
type blockArgs struct {
	block int
	key   string
	args  []any
}

// scriptOps groups per-block script calls by shard into calls of up to
// maxBlocksPerCall blocks (one block per call on a Redis Cluster, whose
// scripts may only touch one slot): fewer script invocations, each still
// atomic.
func (s *Server) scriptOps(sc *redis.Script, head []any, items []blockArgs) []op {
	per := maxBlocksPerCall
	if s.opts.Cluster {
		per = 1
	}
	byShard := make([][]blockArgs, len(s.shards))
	for _, it := range items {
		sh := s.shardOf(it.key)
		byShard[sh] = append(byShard[sh], it)
	}
	var ops []op
	for _, list := range byShard {
		for lo := 0; lo < len(list); lo += per {
			group := list[lo:min(lo+per, len(list))]
			o := op{}
			args := append([]any(nil), head...)
			for _, it := range group {
				o.blocks = append(o.blocks, it.block)
				o.keys = append(o.keys, it.key)
				args = append(args, it.args...)
			}
			o.run = func(ctx context.Context, p redis.Pipeliner, keys []string) redis.Cmder {
				return sc.EvalSha(ctx, p, keys, args...)
			}
			ops = append(ops, o)
		}
	}
	return ops
}

// exec runs ops grouped by shard: one pipeline (one round trip) per shard,
// the shards in parallel. Commands that found their script missing (a
// restarted or flushed server) are run again after loading it; nothing else
// is retried, so no update is ever applied twice.
func (s *Server) exec(ctx context.Context, what string, ops []op) error {
	byShard := make([][]*op, len(s.shards))
	for i := range ops {
		sh := s.shardOf(ops[i].keys[0])
		byShard[sh] = append(byShard[sh], &ops[i])
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, list := range byShard {
		if len(list) == 0 {
			continue
		}
		sh := s.shards[i]
		g.Go(func() error { return sh.run(gctx, what, list) })
	}
	return g.Wait()
}

func (sh *shard) run(ctx context.Context, what string, list []*op) error {
	for attempt := 0; ; attempt++ {
		_, err := sh.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, o := range list {
				o.cmd = o.run(ctx, p, o.keys)
			}
			return nil
		})
		if err == nil {
			return nil
		}
		var again []*op
		for _, o := range list {
			e := o.cmd.Err()
			if e == nil || errors.Is(e, redis.Nil) {
				continue
			}
			if strings.HasPrefix(e.Error(), "NOSCRIPT") && attempt == 0 {
				again = append(again, o)
				continue
			}
			return sh.wrap(what, o, e)
		}
		if len(again) == 0 {
			if errors.Is(err, redis.Nil) {
				return nil
			}
			return fmt.Errorf("ps: %s on shard %s: %w", what, sh.addr, err)
		}
		if err := sh.load(ctx); err != nil {
			return err
		}
		list = again
	}
}

func (sh *shard) wrap(what string, o *op, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "wren-ps: no block"):
		err = fmt.Errorf("%w: %v", ErrNoModel, err)
	case strings.Contains(msg, "bytes, want"):
		err = fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	switch len(o.blocks) {
	case 0:
		return fmt.Errorf("ps: %s: %s on shard %s: %w", what, o.keys[0], sh.addr, err)
	case 1:
		return fmt.Errorf("ps: %s: block %d on shard %s: %w", what, o.blocks[0], sh.addr, err)
	}
	return fmt.Errorf("ps: %s: blocks %v on shard %s: %w", what, o.blocks, sh.addr, err)
}

func checkFinite(v []float32, base int) error {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%w: value %v at index %d", ErrBadInput, x, base+i)
		}
	}
	return nil
}
