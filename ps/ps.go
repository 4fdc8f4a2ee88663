package ps

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/wrenml/wren/internal/redisaddr"
	"github.com/wrenml/wren/internal/redisserver"
)

//go:generate go run ./lua/gen lua

//go:embed lua/dense_add.lua
var denseAddSrc string

//go:embed lua/incr_once.lua
var incrOnceSrc string

//go:embed lua/gather.lua
var gatherSrc string

//go:embed lua/scatter.lua
var scatterSrc string

var (
	denseAdd = redis.NewScript(denseAddSrc)
	incrOnce = redis.NewScript(incrOnceSrc)
	gather   = redis.NewScript(gatherSrc)
	scatter  = redis.NewScript(scatterSrc)
	scripts  = []*redis.Script{denseAdd, incrOnce, gather, scatter}
)

// Errors returned (wrapped) by the package; check them with errors.Is.
var (
	ErrNoModel     = errors.New("ps: no such model")
	ErrModelExists = errors.New("ps: model already exists")
	ErrBadInput    = errors.New("ps: bad input")
	ErrCorrupt     = errors.New("ps: stored block has the wrong length")
	// ErrUnknownOutcome wraps the error of an update whose connection
	// failed after it was sent, even after the client re-sent it: the
	// update may or may not have been applied.
	ErrUnknownOutcome = errors.New("ps: the outcome of the update is unknown")
)

// DefaultBlockSize is the number of floats per block when Options.BlockSize is 0.
const DefaultBlockSize = 1024

// Options configure a Client. Zero values take the documented defaults.
type Options struct {
	// Addrs are the Redis servers ("host:port"), one shard each; blocks are
	// placed by hashing their key's tag, so every client must list the same
	// servers in the same order. Empty means: start a local redis-server on a
	// free loopback port with a random password (Client.Options tells it),
	// stopped by Close.
	Addrs []string
	// Cluster treats Addrs as seeds of one Redis Cluster, which places the
	// blocks by hash slot.
	Cluster bool
	// BlockSize is the number of floats per block for models this Client
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
	// PushIDTTL is how long a shard remembers a push it applied, so that
	// the same push sent again (a pipeline re-sent after its answer was
	// lost) is not applied twice; 0 means one minute. Each push leaves one
	// small key per shard for this long.
	PushIDTTL time.Duration
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
}

// Client is a client of a sharded parameter server: the Redis servers hold
// the models, a Client reads and updates them. It is safe for
// concurrent use.
type Client struct {
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
func Open(ctx context.Context, opts Options) (*Client, error) {
	if opts.BlockSize == 0 {
		opts.BlockSize = DefaultBlockSize
	}
	if opts.BlockSize < 1 || opts.BlockSize > 1<<20 {
		return nil, fmt.Errorf("%w: block size %d (1..%d)", ErrBadInput, opts.BlockSize, 1<<20)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PushIDTTL <= 0 {
		opts.PushIDTTL = time.Minute
	}
	s := &Client{opts: opts}
	if len(opts.Addrs) == 0 {
		// A local server on loopback is still reachable by every local
		// user: protect it with a random password.
		var pw [24]byte
		if _, err := rand.Read(pw[:]); err != nil {
			return nil, fmt.Errorf("ps: password for a local server: %w", err)
		}
		opts.Username, opts.Password = "", hex.EncodeToString(pw[:])
		s.opts.Username, s.opts.Password = opts.Username, opts.Password
		l, err := redisserver.Start(ctx, redisserver.Options{Password: opts.Password})
		if err != nil {
			return nil, fmt.Errorf("ps: no Redis address given and no local server: %w", err)
		}
		s.local = l
		opts.Addrs = []string{l.Addr}
		s.opts.Addrs = opts.Addrs
		opts.Logger.Info("ps: started a local redis-server", "addr", l.Addr)
	}
	addr := redisaddr.Addr{Hosts: opts.Addrs, Username: opts.Username, Password: opts.Password, Cluster: opts.Cluster}
	clients := addr.Clients(redis.Options{
		TLSConfig: opts.TLSConfig, DialTimeout: opts.DialTimeout, ReadTimeout: opts.ReadTimeout, WriteTimeout: opts.WriteTimeout,
		PoolSize: opts.PoolSize,
		// A push must never be applied twice: no automatic retries.
		MaxRetries: -1,
	})
	for i, c := range clients {
		name := opts.Addrs[min(i, len(opts.Addrs)-1)]
		if opts.Cluster {
			name = "cluster " + strings.Join(opts.Addrs, ",")
		}
		s.shards = append(s.shards, &shard{addr: name, c: c})
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

// Options returns the options the client runs with: with a local server,
// its address and generated password. They hold the server's own
// credentials: give workers a Grant's options instead, whose user reaches
// only their models and dies with their job.
func (s *Client) Options() Options {
	o := s.opts
	o.Addrs = slices.Clone(o.Addrs)
	o.Logger = nil
	return o
}

// Addrs returns the shards' addresses (with a local server, its address).
func (s *Client) Addrs() []string { return append([]string(nil), s.opts.Addrs...) }

// Close closes the connections and stops a local server Open started.
func (s *Client) Close() error {
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

// pushKey is the key that records a push on the shard (and, in a
// cluster, the slot) of key: same hash tag.
func pushKey(key, pushID string) string {
	return key[:strings.IndexByte(key, '}')+1] + ":p:" + pushID
}

// newPushID returns a random ID for one push.
func newPushID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Client) ttlSeconds() int64 { return max(int64(s.opts.PushIDTTL/time.Second), 1) }

func blockKey(name string, b int) string { return "wps:{" + name + "/" + strconv.Itoa(b) + "}:w" }
func metaKey(name string) string         { return "wps:{" + name + "}:meta" }
func versionKey(name string) string      { return "wps:{" + name + "}:version" }

// shardOf places a key by its hash tag.
func (s *Client) shardOf(key string) int { return redisaddr.ShardOf(key, len(s.shards)) }

// ParseURL reads a parameter server's address,
// redis://[user:password@]host:port[,host:port...][?cluster=1&tls=1] (one
// URL for the shards, as the command line and workers take it), into the
// options that reach it.
func ParseURL(raw string) (Options, error) {
	a, err := redisaddr.Parse(raw)
	if err != nil {
		return Options{}, fmt.Errorf("ps: %w", err)
	}
	o := Options{Addrs: a.Hosts, Username: a.Username, Password: a.Password, Cluster: a.Cluster}
	if a.TLS {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return o, nil
}

// URL formats the options' address as ParseURL reads it (a custom
// TLSConfig's roots do not travel in it: tls=1 uses the system's).
func (o Options) URL() string {
	return redisaddr.Addr{Hosts: o.Addrs, Username: o.Username, Password: o.Password, Cluster: o.Cluster, TLS: o.TLSConfig != nil}.String()
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
	s    *Client
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

// Create makes a model of n floats initialised by init (nil: Zeros). It fails with
// ErrModelExists if the name is taken.
func (s *Client) Create(ctx context.Context, name string, n int, init Init) (*Model, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, fmt.Errorf("%w: model %q of length %d", ErrBadInput, name, n)
	}
	v := make([]float32, n)
	if init == nil {
		init = Zeros
	}
	if err := init(v); err != nil {
		return nil, fmt.Errorf("ps: create %q: %w", name, err)
	}
	if err := checkFinite(v, 0); err != nil {
		return nil, fmt.Errorf("ps: create %q: initial values: %w", name, err)
	}
	return s.create(ctx, name, v, 0)
}

func (s *Client) create(ctx context.Context, name string, v []float32, version int64) (*Model, error) {
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
func (s *Client) Model(ctx context.Context, name string) (*Model, error) {
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
func (s *Client) Delete(ctx context.Context, name string) error {
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

// maxBlocksPerCall bounds the blocks one dense script call updates, so
// that no call blocks its server for long (about 1 ms at 8 blocks of 1024
// floats). A sparse call (gather, scatter) takes up to maxPairsPerCall
// indices and maxKeysPerCall blocks: one call per shard for a worker's
// window.
const (
	maxBlocksPerCall = 8
	maxPairsPerCall  = 1 << 16
	maxKeysPerCall   = 4096
)

// blockArgs are one block's part of a script call: its arguments to a
// per-block script (args), or its indices and deltas for a packed one.
type blockArgs struct {
	block int
	key   string
	args  []any
	len   int       // the block's length in floats
	at    int       // a gather's: where the block's first value goes
	offs  []uint32  // indices within the block (packed calls)
	dels  []float32 // their deltas (scatter)
}

// weight is what a block adds to a call's budget.
func (it blockArgs) weight() int {
	if it.offs != nil {
		return len(it.offs)
	}
	return 1
}

// groupByShard splits items by shard into calls of at most maxWeight
// weight and maxKeys blocks (one block per call on a Redis Cluster, whose
// scripts may only touch one slot), in order within a shard.
func (s *Client) groupByShard(items []blockArgs, maxWeight, maxKeys int) [][]blockArgs {
	if s.opts.Cluster {
		maxKeys = 1
	}
	byShard := make([][]blockArgs, len(s.shards))
	for _, it := range items {
		sh := s.shardOf(it.key)
		byShard[sh] = append(byShard[sh], it)
	}
	var groups [][]blockArgs
	for _, list := range byShard {
		lo, w := 0, 0
		for i, it := range list {
			if i > lo && (w+it.weight() > maxWeight || i-lo >= maxKeys) {
				groups = append(groups, list[lo:i])
				lo, w = i, 0
			}
			w += it.weight()
		}
		if lo < len(list) {
			groups = append(groups, list[lo:])
		}
	}
	return groups
}

// scriptOps makes the calls of an update: per shard, calls of grouped
// blocks (dense: maxBlocksPerCall blocks; packed: up to maxPairsPerCall
// pairs), each atomic, whose arguments args builds (without the trailing
// ID key's lifetime and the version flag, which it appends).
func (s *Client) scriptOps(sc *redis.Script, items []blockArgs, packed bool, pushID, versionKey string, args func(group []blockArgs) []any) []op {
	maxW, maxK := maxBlocksPerCall, maxBlocksPerCall
	if packed {
		maxW, maxK = maxPairsPerCall, maxKeysPerCall
	}
	// The version is counted by the first script call on its shard (its
	// key may share a script only outside a cluster); else by incrOnce.
	counted := s.opts.Cluster
	vshard := s.shardOf(versionKey)
	var ops []op
	for _, group := range s.groupByShard(items, maxW, maxK) {
		o := op{}
		for _, it := range group {
			o.blocks = append(o.blocks, it.block)
			o.keys = append(o.keys, it.key)
		}
		a := args(group)
		bump := 0
		if !counted && s.shardOf(group[0].key) == vshard {
			o.keys = append(o.keys, versionKey)
			bump, counted = 1, true
		}
		o.keys = append(o.keys, pushKey(group[0].key, pushID))
		a = append(a, s.ttlSeconds(), bump)
		o.run = func(ctx context.Context, p redis.Pipeliner, keys []string) redis.Cmder {
			return sc.EvalSha(ctx, p, keys, a...)
		}
		ops = append(ops, o)
	}
	if !counted || s.opts.Cluster {
		ops = append(ops, incrOp(s, versionKey, pushID))
	}
	return ops
}

// incrOp counts push pushID in the version key, once.
func incrOp(s *Client, vk, pushID string) op {
	return op{keys: []string{vk, pushKey(vk, pushID)}, run: func(ctx context.Context, p redis.Pipeliner, keys []string) redis.Cmder {
		return incrOnce.EvalSha(ctx, p, keys, s.ttlSeconds())
	}}
}

// exec runs ops grouped by shard: one pipeline (one round trip) per shard,
// the shards in parallel. Commands that found their script missing (a
// restarted or flushed server) are run again after loading it; nothing else
// is retried, so no update is ever applied twice.
func (s *Client) exec(ctx context.Context, what string, ops []op) error {
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

// maxPipeline is the most updates sent in one pipeline: a large push goes
// in several, so that a failure re-sends little. Reads (maxReadPipeline)
// go in larger ones: re-sending them costs nothing but the bytes.
const (
	maxPipeline     = 64
	maxReadPipeline = 4096
)

// run sends a shard's ops in pipelines of at most maxPipeline commands.
// Every op is idempotent (pushes carry an ID the scripts record), so a
// pipeline whose connection failed is sent again, up to twice.
func (sh *shard) run(ctx context.Context, what string, list []*op) error {
	per := maxPipeline
	if strings.HasPrefix(what, "pull ") {
		per = maxReadPipeline
	}
	for lo := 0; lo < len(list); lo += per {
		part := list[lo:min(lo+per, len(list))]
		var err error
		for try := 0; try < 3; try++ {
			if try > 0 {
				select {
				case <-time.After(time.Duration(try) * 50 * time.Millisecond):
				case <-ctx.Done():
					return fmt.Errorf("ps: %s on shard %s: %w (after %v)", what, sh.addr, ctx.Err(), err)
				}
			}
			if err = sh.pipeline(ctx, what, part); err == nil || !isNetErr(err) || ctx.Err() != nil {
				break
			}
		}
		if err != nil && isNetErr(err) && strings.HasPrefix(what, "push ") {
			return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// isNetErr reports an error of the connection (refused, reset, EOF, a
// timeout), as opposed to an answer of the server.
func isNetErr(err error) bool {
	var re redis.Error
	if errors.As(err, &re) || errors.Is(err, redis.Nil) || errors.Is(err, ErrNoModel) || errors.Is(err, ErrCorrupt) {
		return false
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// pipeline sends list in one round trip; a command that found its script
// missing (a restarted or flushed server) is sent again after loading it.
func (sh *shard) pipeline(ctx context.Context, what string, list []*op) error {
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
