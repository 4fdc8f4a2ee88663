package wren

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/offheap"
	"github.com/wrenml/wren/internal/retry"
	"github.com/wrenml/wren/job"
)

// inputs locates each call's input in the store: a range of a pack object
// (the inputs of consecutive calls, job.EncodePack) or an object of its
// own (job.InputKey). 16 bytes a call.
type inputs struct {
	refs  []inputRef
	packs []packInfo
}

type inputRef struct {
	off, n, crc uint32
	pack        int32 // index in packs; -1: no input in the store (an attached job's lost one)
}

type packInfo struct {
	first   int32 // the first call it holds
	size    int64 // the object's size
	single  bool  // one call's input, under job.InputKey
	written bool
}

// maxPackedInput bounds a packed input whatever MaxPackedInput says: pack
// offsets are 32-bit.
const maxPackedInput = 1 << 30

// encoded is a map's inputs, encoded into one buffer: input i is
// buf[start[i]:start[i+1]].
type encoded struct {
	buf   []byte
	start []int64
}

func (e *encoded) input(i int) []byte { return e.buf[e.start[i]:e.start[i+1]:e.start[i+1]] }

// inputGroup is what the driver writes as one object: a pack of small
// inputs of consecutive calls, or one large input (pack == false).
type inputGroup struct {
	lo, hi int // calls [lo, hi)
	pack   bool
}

// planInputs groups the calls' inputs into objects: an input over
// maxPacked bytes (or every input when maxPacked < 0) gets its own object;
// runs of smaller ones go into packs. Packs grow from 16 calls to 4096 (and
// at most 16 MiB), so that the first calls can start while later packs are
// written, and hold whole invocation chunks, so that a chunk's inputs are
// one ranged read.
func planInputs(enc *encoded, n int, maxPacked int64, chunk int) []inputGroup {
	maxPacked = min(maxPacked, maxPackedInput)
	var groups []inputGroup
	lo, bytes := -1, int64(0)
	limit := 16
	roundUp := func(n int) int { return (n + chunk - 1) / chunk * chunk }
	flush := func(hi int) {
		if lo >= 0 {
			groups = append(groups, inputGroup{lo: lo, hi: hi, pack: true})
			lo, bytes = -1, 0
			limit = min(limit*2, 4096)
		}
	}
	for i := range n {
		size := enc.start[i+1] - enc.start[i]
		if maxPacked < 0 || size > maxPacked {
			flush(i)
			groups = append(groups, inputGroup{lo: i, hi: i + 1})
			continue
		}
		if lo < 0 {
			lo = i
		}
		bytes += size
		if i+1-lo >= roundUp(limit) || bytes >= maxPackBytes {
			flush(i + 1)
		}
	}
	flush(n)
	return groups
}

// maxPackBytes closes a pack once it holds this many bytes.
const maxPackBytes = 16 << 20

// ref returns call c's input reference for an invocation; r.mu is held.
func (r *run) inputRef(c int) *job.InputRef {
	ref := r.in.refs[c]
	if ref.pack < 0 {
		return nil
	}
	p := r.in.packs[ref.pack]
	if p.single {
		return nil
	}
	return &job.InputRef{Pack: job.PackKey(r.id, int(p.first)), Off: int64(ref.off), Len: int64(ref.n), Size: p.size, CRC: ref.crc}
}

// inputWritten reports whether call c's input is in the store; r.mu is held.
func (r *run) inputWritten(c int) bool {
	ref := r.in.refs[c]
	return ref.pack >= 0 && r.in.packs[ref.pack].written
}

// prepareInputs lays out the groups' references (before anything is
// written, so that invocations can be formed as soon as a pack lands).
func (r *run) prepareInputs(enc *encoded, groups []inputGroup) {
	r.in.refs = offheap.Slice[inputRef](r.n, r)
	r.in.packs = make([]packInfo, len(groups))
	for g, grp := range groups {
		p := &r.in.packs[g]
		p.first = int32(grp.lo)
		if !grp.pack {
			p.single = true
			p.size = enc.start[grp.hi] - enc.start[grp.lo]
			r.in.refs[grp.lo] = inputRef{pack: int32(g), n: uint32(min(p.size, 1<<32-1))}
			continue
		}
		off := int64(0)
		for c := grp.lo; c < grp.hi; c++ {
			in := enc.input(c)
			r.in.refs[c] = inputRef{off: uint32(off), n: uint32(len(in)), crc: job.Checksum(in), pack: int32(g)}
			off += int64(len(in))
		}
		// The pack's size is known once it is encoded (writeInputs), before
		// any of its calls is dispatched.
	}
}

// writeInputs writes the encoded inputs, packed, in order, several objects
// at a time, and wakes the dispatcher as they land; then it lets the
// encoded inputs go. A call whose input cannot be written fails with
// KindStore.
func (r *run) writeInputs(enc *encoded, groups []inputGroup) {
	defer close(r.inputsDone)
	// The inputs are the job's: a driver taken over by another keeps
	// writing them (the other reads them); any other end of the job stops it.
	wctx, wcancel := context.WithCancelCause(context.WithoutCancel(r.ctx))
	defer wcancel(nil)
	stop := context.AfterFunc(r.ctx, func() {
		if cause := context.Cause(r.ctx); !errors.Is(cause, ErrTakenOver) {
			wcancel(cause)
		}
	})
	defer stop()
	g, ctx := errgroup.WithContext(wctx)
	g.SetLimit(4 * runtime.GOMAXPROCS(0))
	for gi, grp := range groups {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			var key string
			var data []byte
			if grp.pack {
				key = job.PackKey(r.id, grp.lo)
				calls := make([]int, 0, grp.hi-grp.lo)
				ins := make([][]byte, 0, grp.hi-grp.lo)
				for c := grp.lo; c < grp.hi; c++ {
					calls = append(calls, c)
					ins = append(ins, enc.input(c))
				}
				data, _ = job.EncodePack(key, calls, ins)
			} else {
				key, data = job.InputKey(r.id, grp.lo), enc.input(grp.lo)
			}
			// The driver holds the only copy of an input: it tries harder
			// than a worker does (about 7 s of tries).
			err := retry.StoreN(ctx, inputTries, func(ctx context.Context) error {
				return blob.PutBytes(ctx, r.store, key, data, blob.PutOptions{Ephemeral: true})
			})
			if err != nil {
				if r.ctx.Err() == nil {
					for c := grp.lo; c < grp.hi; c++ {
						r.finish(c, nil, &CallError{Kind: job.KindStore, Message: fmt.Sprintf("write input %d: %v", c, err), Err: err})
					}
					r.signal() // the dispatcher may be waiting for these inputs
				}
				return nil
			}
			r.mu.Lock()
			r.in.packs[gi].size = int64(len(data))
			r.in.packs[gi].written = true
			r.mu.Unlock()
			r.signal()
			return nil
		})
	}
	g.Wait()
}

// inputTries is how many times the driver tries to write an input.
const inputTries = 10

// readInputs finds the inputs of an attached job in the store: every
// pack's index (read from its end) and every input of its own.
func (r *run) readInputs(ctx context.Context) error {
	r.in.refs = offheap.Slice[inputRef](r.n, r)
	for i := range r.in.refs {
		r.in.refs[i].pack = -1
	}
	var keys []blob.Attrs
	err := retry.Store(ctx, func(ctx context.Context) error {
		keys = keys[:0]
		for a, err := range r.store.List(ctx, job.InputPrefix(r.id)) {
			if err != nil {
				return err
			}
			keys = append(keys, a)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("wren: job %s: list inputs: %w", r.id, err)
	}
	type found struct {
		pack packInfo
		idx  *job.PackIndex
	}
	out := make([]found, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i, a := range keys {
		name := a.Key[len(job.InputPrefix(r.id)):]
		g.Go(func() error {
			if first, ok := job.ParseCallName(name); ok && !hasPrefix(name, "pack-") {
				if first < r.n {
					out[i] = found{pack: packInfo{first: int32(first), size: a.Size, single: true, written: true}}
				}
				return nil
			}
			first, ok := job.ParseCallName(name[len("pack-"):])
			if !ok || !hasPrefix(name, "pack-") || first >= r.n {
				return nil // not the layout's: ignored
			}
			var idx *job.PackIndex
			err := retry.Store(gctx, func(ctx context.Context) (err error) {
				idx, err = readPackIndex(ctx, r.store, a.Key, a.Size)
				return err
			})
			if err != nil {
				return fmt.Errorf("wren: job %s: %s: %w", r.id, a.Key, err)
			}
			out[i] = found{pack: packInfo{first: int32(first), size: a.Size, written: true}, idx: idx}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, f := range out {
		if f.pack.size == 0 && f.idx == nil && !f.pack.single {
			continue
		}
		p := int32(len(r.in.packs))
		r.in.packs = append(r.in.packs, f.pack)
		if f.pack.single {
			r.in.refs[f.pack.first] = inputRef{pack: p, n: uint32(min(f.pack.size, 1<<32-1))}
			continue
		}
		for k, c := range f.idx.Calls {
			ref := f.idx.Refs[k]
			if c < 0 || c >= r.n || ref.Off+ref.Len > f.pack.size || ref.Off > 1<<32-1 || ref.Len > 1<<32-1 {
				return fmt.Errorf("wren: job %s: %w: pack %d holds call %d at [%d, +%d)", r.id, job.ErrBadPack, f.pack.first, c, ref.Off, ref.Len)
			}
			r.in.refs[c] = inputRef{off: uint32(ref.Off), n: uint32(ref.Len), crc: ref.CRC, pack: p}
		}
	}
	return nil
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// readPackIndex reads a pack's index from its end: the trailer, then the
// index.
func readPackIndex(ctx context.Context, st blob.Store, key string, size int64) (*job.PackIndex, error) {
	tail := int64(4 + len(job.PackMagic))
	if size < tail {
		return nil, fmt.Errorf("%w: %d bytes", job.ErrBadPack, size)
	}
	t, _, err := blob.ReadRange(ctx, st, key, size-tail, tail)
	if err != nil {
		return nil, err
	}
	if int64(len(t)) != tail || string(t[4:]) != job.PackMagic {
		return nil, fmt.Errorf("%w: no %s trailer", job.ErrBadPack, job.PackMagic)
	}
	il := int64(binary.LittleEndian.Uint32(t))
	if il > size-tail {
		return nil, fmt.Errorf("%w: an index of %d bytes in %d", job.ErrBadPack, il, size)
	}
	b, _, err := blob.ReadRange(ctx, st, key, size-tail-il, il+tail)
	if err != nil {
		return nil, err
	}
	idx, err := job.DecodePackIndex(b, size)
	if err != nil {
		return nil, err
	}
	if len(idx.Calls) == 0 {
		return nil, errors.New("empty pack")
	}
	return idx, nil
}
