package ps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/npy"
)

// Pull returns the values in [lo, hi). Each block is read atomically; a
// range spanning blocks may mix versions of different blocks (HOGWILD!).
func (m *Model) Pull(ctx context.Context, lo, hi int) ([]float32, error) {
	if lo < 0 || hi > m.n || lo > hi {
		return nil, fmt.Errorf("%w: pull [%d, %d) of model %q of length %d", ErrBadInput, lo, hi, m.name, m.n)
	}
	dst := make([]float32, hi-lo)
	return dst, m.PullInto(ctx, dst, lo)
}

// PullInto reads len(dst) values starting at lo into dst.
func (m *Model) PullInto(ctx context.Context, dst []float32, lo int) error {
	hi := lo + len(dst)
	if lo < 0 || hi > m.n {
		return fmt.Errorf("%w: pull [%d, %d) of model %q of length %d", ErrBadInput, lo, hi, m.name, m.n)
	}
	if lo == hi {
		return nil
	}
	var ops []op
	for b := lo / m.bs; b*m.bs < hi; b++ {
		bl := m.blockLen(b)
		s, e := max(lo, b*m.bs)-b*m.bs, min(hi, b*m.bs+bl)-b*m.bs // floats within the block
		whole := s == 0 && e == bl
		ops = append(ops, single(b, blockKey(m.name, b), func(ctx context.Context, p redis.Pipeliner, key string) redis.Cmder {
			if whole {
				return p.Get(ctx, key)
			}
			return p.GetRange(ctx, key, int64(4*s), int64(4*e-1))
		}))
	}
	if err := m.s.exec(ctx, "pull "+m.name, ops); err != nil {
		return err
	}
	for _, o := range ops {
		b := o.blocks[0]
		bl := m.blockLen(b)
		s, e := max(lo, b*m.bs)-b*m.bs, min(hi, b*m.bs+bl)-b*m.bs
		raw, err := o.cmd.(*redis.StringCmd).Bytes()
		if errors.Is(err, redis.Nil) {
			return fmt.Errorf("ps: pull %s: block %d: %w", m.name, b, ErrNoModel)
		}
		if err != nil {
			return fmt.Errorf("ps: pull %s: block %d: %w", m.name, b, err)
		}
		if len(raw) != 4*(e-s) {
			return fmt.Errorf("ps: pull %s: block %d: %w: got %d bytes for floats [%d, %d)", m.name, b, ErrCorrupt, len(raw), s, e)
		}
		decodeInto(dst[b*m.bs+s-lo:b*m.bs+e-lo], raw)
	}
	return nil
}

// PullIndices returns the values at the given indices, in their order
// (an index may repeat). It makes one script call per shard (up to 65,536
// distinct indices a call): the indices go in packed, their values come
// back packed. Each block is read atomically.
func (m *Model) PullIndices(ctx context.Context, idx []int) ([]float32, error) {
	out := make([]float32, len(idx))
	return out, m.PullIndicesInto(ctx, out, idx)
}

// PullIndicesInto is PullIndices into dst (len(dst) == len(idx)).
func (m *Model) PullIndicesInto(ctx context.Context, dst []float32, idx []int) error {
	if len(dst) != len(idx) {
		return fmt.Errorf("%w: %d indices into %d values", ErrBadInput, len(idx), len(dst))
	}
	for _, i := range idx {
		if i < 0 || i >= m.n {
			return fmt.Errorf("%w: index %d out of model %q of length %d", ErrBadInput, i, m.name, m.n)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	order := make([]int, len(idx))
	for j := range order {
		order[j] = j
	}
	slices.SortFunc(order, func(a, b int) int { return idx[a] - idx[b] })
	// The distinct indices, ascending, by block; uniqAt[k] is where the
	// k-th sorted index's value is among them.
	uniqAt := make([]int, len(order))
	var items []blockArgs
	nu := 0
	for k, j := range order {
		i := idx[j]
		if k > 0 && i == idx[order[k-1]] {
			uniqAt[k] = nu - 1
			continue
		}
		b := i / m.bs
		if len(items) == 0 || items[len(items)-1].block != b {
			items = append(items, blockArgs{block: b, key: blockKey(m.name, b), len: m.blockLen(b), at: nu})
		}
		it := &items[len(items)-1]
		it.offs = append(it.offs, uint32(i-b*m.bs))
		uniqAt[k] = nu
		nu++
	}
	groups := m.s.groupByShard(items, maxPairsPerCall, maxKeysPerCall)
	ops := make([]op, len(groups))
	for g, group := range groups {
		o := &ops[g]
		cnt, lens := make([]uint32, len(group)), make([]uint32, len(group))
		var offs []uint32
		for j, it := range group {
			o.blocks = append(o.blocks, it.block)
			o.keys = append(o.keys, it.key)
			cnt[j], lens[j] = uint32(len(it.offs)), uint32(it.len)
			offs = append(offs, it.offs...)
		}
		args := []any{encodeU32(cnt), encodeU32(lens), encodeU32(offs)}
		o.run = func(ctx context.Context, p redis.Pipeliner, keys []string) redis.Cmder {
			return gather.EvalSha(ctx, p, keys, args...)
		}
	}
	if err := m.s.exec(ctx, "pull "+m.name, ops); err != nil {
		return err
	}
	vals := make([]float32, nu)
	for g, group := range groups {
		raw, err := ops[g].cmd.(*redis.Cmd).Text()
		if err != nil {
			return fmt.Errorf("ps: pull %s: blocks %v: %w", m.name, ops[g].blocks, err)
		}
		want := 0
		for _, it := range group {
			want += len(it.offs)
		}
		if len(raw) != 4*want {
			return fmt.Errorf("ps: pull %s: blocks %v: %w: %d bytes for %d values", m.name, ops[g].blocks, ErrCorrupt, len(raw), want)
		}
		for _, it := range group {
			decodeInto(vals[it.at:it.at+len(it.offs)], []byte(raw[:4*len(it.offs)]))
			raw = raw[4*len(it.offs):]
		}
	}
	for k, j := range order {
		dst[j] = vals[uniqAt[k]]
	}
	return nil
}

func fmtScale(scale float64) string { return strconv.FormatFloat(scale, 'g', -1, 64) }

func checkScale(scale float64) error {
	if math.IsNaN(scale) || math.IsInf(scale, 0) {
		return fmt.Errorf("%w: scale %v", ErrBadInput, scale)
	}
	return nil
}

// Push adds scale*deltas[i] to value lo+i, atomically per block (a Lua
// script per block, pipelined per shard), and counts one version. Invalid
// input (out of range, NaN or Inf) writes nothing. If a shard fails mid-way
// the error names it; each block is then either fully updated or untouched.
func (m *Model) Push(ctx context.Context, lo int, deltas []float32, scale float64, opts ...PushOption) error {
	hi := lo + len(deltas)
	if lo < 0 || hi > m.n {
		return fmt.Errorf("%w: push [%d, %d) to model %q of length %d", ErrBadInput, lo, hi, m.name, m.n)
	}
	if err := checkScale(scale); err != nil {
		return err
	}
	if err := checkFinite(deltas, lo); err != nil {
		return err
	}
	notes, err := m.noteOps(opts)
	if err != nil {
		return err
	}
	if len(deltas) == 0 {
		return nil
	}
	items := make([]blockArgs, 0, (hi-lo)/m.bs+2)
	for b := lo / m.bs; b*m.bs < hi; b++ {
		bl := m.blockLen(b)
		s, e := max(lo, b*m.bs)-b*m.bs, min(hi, b*m.bs+bl)-b*m.bs
		payload := encode(deltas[b*m.bs+s-lo : b*m.bs+e-lo])
		items = append(items, blockArgs{block: b, key: blockKey(m.name, b), args: []any{s, bl, payload}})
	}
	id := newPushID()
	sc := fmtScale(scale)
	ops := m.s.scriptOps(denseAdd, items, false, id, versionKey(m.name), func(group []blockArgs) []any {
		a := []any{sc}
		for _, it := range group {
			a = append(a, it.args...)
		}
		return a
	})
	return m.s.exec(ctx, "push "+m.name, append(ops, notes...))
}

// PushSparse adds scale*deltas[j] to value idx[j] for every j, atomically per
// block, in the given order per index (repeated indices add up), and counts
// one version. It makes one script call per shard (up to 65,536 pairs a
// call), the indices and deltas packed. Invalid input writes nothing.
func (m *Model) PushSparse(ctx context.Context, idx []int, deltas []float32, scale float64, opts ...PushOption) error {
	if len(idx) != len(deltas) {
		return fmt.Errorf("%w: %d indices and %d deltas", ErrBadInput, len(idx), len(deltas))
	}
	if err := checkScale(scale); err != nil {
		return err
	}
	for j, i := range idx {
		if i < 0 || i >= m.n {
			return fmt.Errorf("%w: index %d out of model %q of length %d", ErrBadInput, i, m.name, m.n)
		}
		if f := float64(deltas[j]); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%w: delta %v for index %d", ErrBadInput, deltas[j], i)
		}
	}
	notes, err := m.noteOps(opts)
	if err != nil {
		return err
	}
	if len(idx) == 0 {
		return nil
	}
	order := make([]int, len(idx))
	for j := range order {
		order[j] = j
	}
	if !slices.IsSorted(idx) {
		slices.SortStableFunc(order, func(a, b int) int { return idx[a] - idx[b] })
	}
	var items []blockArgs
	for _, j := range order {
		b := idx[j] / m.bs
		if len(items) == 0 || items[len(items)-1].block != b {
			items = append(items, blockArgs{block: b, key: blockKey(m.name, b), len: m.blockLen(b)})
		}
		it := &items[len(items)-1]
		it.offs = append(it.offs, uint32(idx[j]-b*m.bs))
		it.dels = append(it.dels, deltas[j])
	}
	id := newPushID()
	sc := fmtScale(scale)
	ops := m.s.scriptOps(scatter, items, true, id, versionKey(m.name), func(group []blockArgs) []any {
		cnt, lens := make([]uint32, len(group)), make([]uint32, len(group))
		n := 0
		for j, it := range group {
			cnt[j], lens[j] = uint32(len(it.offs)), uint32(it.len)
			n += len(it.offs)
		}
		offs, dels := make([]uint32, 0, n), make([]float32, 0, n)
		for _, it := range group {
			offs = append(offs, it.offs...)
			dels = append(dels, it.dels...)
		}
		return []any{sc, encodeU32(cnt), encodeU32(lens), encodeU32(offs), encode(dels)}
	})
	return m.s.exec(ctx, "push "+m.name, append(ops, notes...))
}

// Version returns the number of pushes applied to the model so far (a push
// that returned an error may or may not have been counted).
func (m *Model) Version(ctx context.Context) (int64, error) {
	sh := m.s.shards[m.s.shardOf(versionKey(m.name))]
	v, err := sh.c.Get(ctx, versionKey(m.name)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("ps: version of %q: %w", m.name, ErrNoModel)
	}
	if err != nil {
		return 0, fmt.Errorf("ps: version of %q on shard %s: %w", m.name, sh.addr, err)
	}
	return v, nil
}

// Replica is a worker's local copy of a model with bounded staleness: Get
// re-pulls the model when the server's version is more than MaxStale
// versions ahead of the copy. It is not safe for concurrent use.
type Replica struct {
	m        *Model
	maxStale int64
	w        []float32
	version  int64
	pulls    int
}

// NewReplica returns a replica that tolerates maxStale versions of lag
// (0: re-pull whenever anything was pushed).
func (m *Model) NewReplica(maxStale int64) *Replica {
	return &Replica{m: m, maxStale: maxStale, version: -1}
}

// Get returns the local copy, first re-pulling it if it is too stale. The
// returned slice is the replica's own: it changes on the next re-pull.
func (r *Replica) Get(ctx context.Context) ([]float32, error) {
	v, err := r.m.Version(ctx)
	if err != nil {
		return nil, err
	}
	if r.version >= 0 && v-r.version <= r.maxStale {
		return r.w, nil
	}
	if r.w == nil {
		r.w = make([]float32, r.m.n)
	}
	if err := r.m.PullInto(ctx, r.w, 0); err != nil {
		return nil, err
	}
	r.version = v // the copy holds at least every push counted before v was read
	r.pulls++
	return r.w, nil
}

// Version returns the version of the local copy (-1 before the first pull).
func (r *Replica) Version() int64 { return r.version }

// Pulls returns how many times the replica pulled the model.
func (r *Replica) Pulls() int { return r.pulls }

// checkpointMeta is stored beside a checkpoint's weights.
type checkpointMeta struct {
	Model   string    `json:"model"`
	Len     int       `json:"len"`
	Block   int       `json:"block"`
	Version int64     `json:"version"`
	Created time.Time `json:"created"`
}

// Checkpoint writes the model to the store under prefix: prefix/weights.npy
// (a float32 vector numpy reads) and prefix/meta.json. Each block is read
// atomically; pushes running meanwhile may land in some blocks and not
// others, as in any HOGWILD! snapshot.
func (m *Model) Checkpoint(ctx context.Context, store blob.Store, prefix string) error {
	v, err := m.Version(ctx)
	if err != nil {
		return err
	}
	w, err := m.Pull(ctx, 0, m.n)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := npy.Write(&buf, w); err != nil {
		return err
	}
	if err := blob.PutBytes(ctx, store, prefix+"/weights.npy", buf.Bytes(), blob.PutOptions{}); err != nil {
		return fmt.Errorf("ps: checkpoint %s: %w", m.name, err)
	}
	mb, _ := json.MarshalIndent(checkpointMeta{Model: m.name, Len: m.n, Block: m.bs, Version: v, Created: time.Now().UTC()}, "", "  ")
	if err := blob.PutBytes(ctx, store, prefix+"/meta.json", mb, blob.PutOptions{}); err != nil {
		return fmt.Errorf("ps: checkpoint %s: %w", m.name, err)
	}
	return nil
}

// Restore creates model name from a checkpoint, with the checkpoint's
// values and version.
func (s *Client) Restore(ctx context.Context, store blob.Store, prefix, name string) (*Model, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	mb, err := blob.ReadAll(ctx, store, prefix+"/meta.json")
	if err != nil {
		return nil, fmt.Errorf("ps: restore %s: %w", prefix, err)
	}
	var cm checkpointMeta
	if err := json.Unmarshal(mb, &cm); err != nil {
		return nil, fmt.Errorf("ps: restore %s: meta.json: %w", prefix, err)
	}
	r, err := store.Get(ctx, prefix+"/weights.npy")
	if err != nil {
		return nil, fmt.Errorf("ps: restore %s: %w", prefix, err)
	}
	defer r.Close()
	w, shape, err := npy.Read[float32](r)
	if err != nil {
		return nil, fmt.Errorf("ps: restore %s: weights.npy: %w", prefix, err)
	}
	if len(shape) != 1 || len(w) != cm.Len {
		return nil, fmt.Errorf("ps: restore %s: %w: weights of shape %v, meta says %d", prefix, ErrCorrupt, shape, cm.Len)
	}
	if err := checkFinite(w, 0); err != nil {
		return nil, fmt.Errorf("ps: restore %s: %w", prefix, err)
	}
	return s.create(ctx, name, w, cm.Version)
}
