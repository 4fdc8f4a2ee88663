package mapreduce

import (
	"bufio"
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/worker"
)

// MapFunc maps one input to key-value pairs through emit. Lines come as
// strings, records as []byte; either is only valid during the call (a key
// that is a substring of a line is copied as needed, but keep a copy of
// the input itself to retain it). A []byte value is kept as emitted until
// the call ends: do not change its bytes after emit.
type MapFunc[In any, K ~string, V any] func(ctx context.Context, in In, emit func(K, V)) error

// ReduceFunc folds the values of one key into one (also used as a
// combiner on a map's own output, so it must be associative).
type ReduceFunc[K ~string, V any] func(ctx context.Context, key K, values []V) (V, error)

// Mapper is a registered map function.
type Mapper[In any, K ~string, V any] struct {
	name string
	fn   MapFunc[In, K, V]
	task *wren.Task[mapTask, mapResult]
}

// Reducer is a registered reduce (or combine) function.
type Reducer[K ~string, V any] struct {
	name string
	fn   ReduceFunc[K, V]
	task *wren.Task[reduceTask, reduceResult]
}

var (
	regMu    sync.Mutex
	reducers = map[string]any{}
)

// RegisterMap makes fn a map function under name (a wren task
// "mapreduce.map.<name>"); call it at package level, like wren.Register.
func RegisterMap[In any, K ~string, V any](name string, fn MapFunc[In, K, V]) *Mapper[In, K, V] {
	m := &Mapper[In, K, V]{name: name, fn: fn}
	m.task = wren.Register("mapreduce.map."+name, m.run)
	return m
}

// RegisterReduce makes fn a reduce (and combine) function under name (a
// wren task "mapreduce.reduce.<name>"); call it at package level.
func RegisterReduce[K ~string, V any](name string, fn ReduceFunc[K, V]) *Reducer[K, V] {
	r := &Reducer[K, V]{name: name, fn: fn}
	r.task = wren.Register("mapreduce.reduce."+name, r.run)
	regMu.Lock()
	reducers[name] = r
	regMu.Unlock()
	return r
}

// Format is how a job writes its output partitions.
type Format int

// Output formats of a job's partitions.
const (
	// OutputRuns writes records (key, value) sorted by key, in the
	// package's run format; Result reads them.
	OutputRuns Format = iota
	// OutputText writes "key\tvalue\n" lines.
	OutputText
	// OutputValues writes the values' bytes one after another (a sort's
	// records).
	OutputValues
)

// Job is a MapReduce job: map the input, shuffle by key through storage,
// reduce each partition.
type Job[In any, K ~string, V any] struct {
	Input Source[In]
	Map   *Mapper[In, K, V]
	// Combine, if set, folds each map call's values per key before the
	// shuffle; Reduce folds each key's values. A nil Reduce keeps every
	// record (a sort).
	Combine, Reduce *Reducer[K, V]
	// Partitions is the number of reduce calls; 0 means the executor's
	// parallelism.
	Partitions int
	// Splitters, when set (Partitions-1 sorted keys), partition by key
	// range instead of by hash, so that partition outputs are in key order.
	Splitters []string
	// Shuffle stores the map outputs: a blob store URL or
	// redis://host:port[,host:port...]; "" means the executor's store.
	Shuffle string
	// Output is where partitions are written (part-NNNNN); "" means
	// mapreduce/<job>/out in the executor's store. It must be empty. When
	// every partition is written, Run writes SuccessName beside them.
	Output string
	// Format is OutputRuns (default), OutputText or OutputValues.
	Format Format
	// SplitSize is the input bytes per map call; 0 means a quarter of
	// each worker's share of the input (so that calls balance), within
	// 1 MiB to 32 MiB.
	SplitSize int64
	// MaxLine caps a text line; 0 means 1 MiB.
	MaxLine int
	// MapOptions adjust both stages' maps.
	MapOptions []wren.MapOption
}

// mapTask is one map call's input.
type mapTask struct {
	Input      string
	Record     int
	Split      Split
	Partitions int
	Splitters  []string
	Shuffle    string
	Prefix     string // shuffle key prefix of this job
	Call       int
	Combiner   string
	MaxLine    int
}

// mapResult is where a map call's partitions are.
type mapResult struct {
	Object  string
	Offsets []int64 // partition p is [Offsets[p], Offsets[p+1])
	Records int64
	Bytes   int64 // input bytes
}

type reduceTask struct {
	Shuffle   string
	Partition int
	Objects   []string
	Offsets   [][2]int64 // per object: the partition's range
	Output    string
	Format    Format
}

type reduceResult struct {
	Key     string
	Records int64
	Bytes   int64
}

func partitionOf(key string, n int, splitters []string) int {
	if len(splitters) > 0 {
		// The first splitter above the key: keys equal to a splitter go right.
		return sort.Search(len(splitters), func(i int) bool { return splitters[i] > key })
	}
	return int(xxhash.Sum64String(key) % uint64(n))
}

// run is the map task: read the split, map, combine, sort each partition,
// write one shuffle object for this attempt.
func (m *Mapper[In, K, V]) run(ctx context.Context, t mapTask) (mapResult, error) {
	in, err := storeOf(ctx, t.Input)
	if err != nil {
		return mapResult{}, err
	}
	vc := codecFor[V]()
	var comb *Reducer[K, V]
	if t.Combiner != "" {
		regMu.Lock()
		r, ok := reducers[t.Combiner].(*Reducer[K, V])
		regMu.Unlock()
		if !ok {
			return mapResult{}, fmt.Errorf("mapreduce: combiner %q is not registered for these types", t.Combiner)
		}
		comb = r
	}
	// Values are encoded when the partitions are written; []byte values
	// are kept as emitted (MapFunc's contract: do not change them after).
	type rec struct {
		pfx uint64 // the key's first 8 bytes, big-endian: most comparisons end here
		key string
		val V
	}
	type combined struct {
		p  int
		vs []V
	}
	parts := make([][]rec, t.Partitions)
	var byKey map[string]*combined
	if comb != nil {
		byKey = map[string]*combined{}
	}
	var emitErr error
	emit := func(k K, v V) {
		if comb == nil {
			p := partitionOf(string(k), t.Partitions, t.Splitters)
			parts[p] = append(parts[p], rec{prefix(string(k)), string(k), v})
			return
		}
		c := byKey[string(k)]
		if c == nil {
			// The key may alias the input (a substring of a line): copy it
			// once, when it is new.
			key := strings.Clone(string(k))
			c = &combined{p: partitionOf(key, t.Partitions, t.Splitters)}
			byKey[key] = c
		}
		c.vs = append(c.vs, v)
		if len(c.vs) >= 64 { // fold as we go: memory stays per key
			f, err := comb.fn(ctx, k, c.vs)
			if err != nil && emitErr == nil {
				emitErr = err
			}
			c.vs = append(c.vs[:0], f)
		}
	}
	// The input's type is known once, not per record.
	lineFn, _ := any(m.fn).(MapFunc[string, K, V])
	recFn, _ := any(m.fn).(MapFunc[[]byte, K, V])
	res := mapResult{}
	for _, r := range t.Split.Ranges {
		res.Bytes += r.Len
		if t.Record > 0 {
			if recFn == nil {
				return res, fmt.Errorf("mapreduce: map %q takes %T, not []byte records", m.name, *new(In))
			}
			data, _, err := blob.ReadRange(ctx, in, r.Key, r.Off, r.Len)
			if err != nil {
				return res, err
			}
			for i := 0; i+t.Record <= len(data); i += t.Record {
				if err := recFn(ctx, data[i:i+t.Record:i+t.Record], emit); err != nil {
					return res, err
				}
				res.Records++
			}
		} else {
			if lineFn == nil {
				return res, fmt.Errorf("mapreduce: map %q takes %T, not string lines", m.name, *new(In))
			}
			err := eachLine(ctx, in, r, t.MaxLine, func(line []byte) error {
				res.Records++
				// The buffer is never written after it is read, so the
				// line can be a string without a copy.
				return lineFn(ctx, unsafe.String(unsafe.SliceData(line), len(line)), emit)
			})
			if err != nil {
				return res, err
			}
		}
		if emitErr != nil {
			return res, emitErr
		}
	}
	for k, c := range byKey {
		v := c.vs[0]
		if len(c.vs) > 1 {
			if v, err = comb.fn(ctx, K(k), c.vs); err != nil {
				return res, err
			}
		}
		parts[c.p] = append(parts[c.p], rec{prefix(k), k, v})
	}
	// Each partition sorted by key, one after another, in one object.
	size := 0
	for _, recs := range parts {
		size += len(recs) * 16
	}
	out := make([]byte, 0, int64(size)+res.Bytes+res.Bytes/8)
	res.Offsets = make([]int64, 0, t.Partitions+1)
	for _, recs := range parts {
		slices.SortFunc(recs, func(a, b rec) int {
			if a.pfx != b.pfx {
				return cmp.Compare(a.pfx, b.pfx)
			}
			return strings.Compare(a.key, b.key)
		})
		res.Offsets = append(res.Offsets, int64(len(out)))
		for _, r := range recs {
			out = appendRecordFunc(out, r.key, func(dst []byte) []byte { return vc.put(dst, r.val) })
		}
	}
	res.Offsets = append(res.Offsets, int64(len(out)))
	var nonce [6]byte
	rand.Read(nonce[:])
	// Per attempt: a retried or speculative map never overwrites the
	// winner's object, and reducers read only the winners'.
	res.Object = fmt.Sprintf("%s/map-%06d-%s", t.Prefix, t.Call, hex.EncodeToString(nonce[:]))
	sh, err := openShuffle(ctx, t.Shuffle)
	if err != nil {
		return res, err
	}
	defer sh.close()
	return res, sh.put(ctx, res.Object, out)
}

// mergeItem is a run's current record in the reduce's merge heap.
type mergeItem struct {
	r   *runReader
	idx int
}

type mergeHeap []mergeItem

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	a, b := h[i].r, h[j].r
	if a.pfx != b.pfx {
		return a.pfx < b.pfx
	}
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c < 0
	}
	return h[i].idx < h[j].idx
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(mergeItem)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// run is the reduce task: read the partition from every map's object in
// parallel, merge, reduce, write the output partition.
func (r *Reducer[K, V]) run(ctx context.Context, t reduceTask) (reduceResult, error) {
	return reducePartition(ctx, t, codecFor[V](), r.fn)
}

// identityTask reduces by keeping every record (Job.Reduce nil).
var identityTask = wren.Register("mapreduce.reduce.identity", func(ctx context.Context, t reduceTask) (reduceResult, error) {
	return reducePartition[string, []byte](ctx, t, codecFor[[]byte](), nil)
})

func reducePartition[K ~string, V any](ctx context.Context, t reduceTask, vc valueCodec[V], fn ReduceFunc[K, V]) (reduceResult, error) {
	sh, err := openShuffle(ctx, t.Shuffle)
	if err != nil {
		return reduceResult{}, err
	}
	defer sh.close()
	st, err := storeOf(ctx, t.Output)
	if err != nil {
		return reduceResult{}, err
	}
	// Parallel, pipelined reads: every run is fetched in chunks ahead of
	// the merge (the paper names serial shuffle reads as why its word
	// count trailed Spark), and memory stays a few chunks per run whatever
	// the partition's size.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, shuffleReads)
	// Up to three chunks per run are in memory (one parsed, one fetched,
	// one being read): a budget of about 3 x 96 MiB however many runs.
	chunk := int64(min(maxChunk, max(minChunk, (96<<20)/max(len(t.Objects), 1))))
	h := mergeHeap{}
	for i, obj := range t.Objects {
		rr := &runReader{more: fetchChunks(ctx, sh, sem, obj, t.Offsets[i][0], t.Offsets[i][1]-t.Offsets[i][0], chunk)}
		if rr.next() {
			h = append(h, mergeItem{rr, i})
		} else if rr.err != nil {
			return reduceResult{}, fmt.Errorf("%s: %w", obj, rr.err)
		}
	}
	heap.Init(&h)
	res := reduceResult{Key: fmt.Sprintf("part-%05d", t.Partition)}
	// The merge streams into the put; a failed merge fails the put, so
	// the partition appears whole or not at all.
	pr, pw := io.Pipe()
	var written countWriter
	merged := make(chan struct{})
	go func() {
		defer close(merged)
		bw := bufio.NewWriterSize(io.MultiWriter(pw, &written), 1<<20)
		err := mergeRuns(ctx, t, h, vc, fn, bw, &res)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	err = st.Put(ctx, res.Key, pr, blob.PutOptions{})
	if err != nil {
		cancel()
		pr.CloseWithError(err) // stops the merge if the put failed first
	}
	<-merged
	res.Bytes = int64(written)
	return res, err
}

// shuffleReads bounds one reduce call's shuffle reads in flight.
const shuffleReads = 16

// A reduce reads each run in chunks of minChunk to maxChunk bytes.
const (
	minChunk = 64 << 10
	maxChunk = 4 << 20
)

// fetchChunks reads [off, off+n) of a shuffle object in chunks, one ahead
// of the consumer, and returns the function that hands them out (io.EOF
// after the last).
func fetchChunks(ctx context.Context, sh shuffle, sem chan struct{}, obj string, off, n, chunkSize int64) func() ([]byte, error) {
	type chunk struct {
		b   []byte
		err error
	}
	ch := make(chan chunk, 1)
	go func() {
		defer close(ch)
		for done := int64(0); done < n; {
			k := min(n-done, chunkSize)
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				ch <- chunk{err: ctx.Err()}
				return
			}
			b, err := sh.read(ctx, obj, off+done, k)
			<-sem
			select {
			case ch <- chunk{b, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
			done += k
		}
	}()
	return func() ([]byte, error) {
		c, ok := <-ch
		if !ok {
			return nil, io.EOF
		}
		return c.b, c.err
	}
}

// mergeRuns merges the runs in h by key into w, reducing each key's values
// with fn (nil: every record as it is).
func mergeRuns[K ~string, V any](ctx context.Context, t reduceTask, h mergeHeap, vc valueCodec[V], fn ReduceFunc[K, V], w *bufio.Writer, res *reduceResult) error {
	var buf []byte
	emit := func(key string, val []byte, v any) error {
		buf = encodeOut(buf[:0], t.Format, key, val, v)
		res.Records++
		_, err := w.Write(buf)
		return err
	}
	var vals []V
	var cur []byte
	have := false // cur holds a key (which may be "": cur != nil cannot tell)
	flush := func() error {
		v, err := fn(ctx, K(cur), vals)
		if err != nil {
			return err
		}
		return emit(string(cur), vc.put(nil, v), v)
	}
	for h.Len() > 0 {
		it := h[0]
		if fn == nil {
			if err := emit(unsafe.String(unsafe.SliceData(it.r.key), len(it.r.key)), it.r.val, nil); err != nil {
				return err
			}
		} else {
			if have && !bytes.Equal(cur, it.r.key) {
				if err := flush(); err != nil {
					return err
				}
				vals = vals[:0]
				have = false
			}
			if !have {
				cur = append(cur[:0], it.r.key...)
				have = true
			}
			v, err := vc.get(it.r.val)
			if err != nil {
				return err
			}
			vals = append(vals, v)
		}
		if it.r.next() {
			heap.Fix(&h, 0)
		} else {
			if it.r.err != nil {
				return fmt.Errorf("%s: %w", t.Objects[it.idx], it.r.err)
			}
			heap.Pop(&h)
		}
	}
	if fn != nil && have {
		return flush()
	}
	return nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

func encodeOut(dst []byte, format Format, key string, val []byte, v any) []byte {
	switch format {
	case OutputText:
		dst = append(dst, key...)
		dst = append(dst, '\t')
		if v != nil {
			return append(fmt.Appendf(dst, "%v", v), '\n')
		}
		return append(append(dst, val...), '\n')
	case OutputValues:
		return append(dst, val...)
	}
	return appendRecord(dst, key, val)
}

// Result is a finished job's output: partition objects in a store.
type Result[K ~string, V any] struct {
	Store      string   // the output store's URL
	Partitions []string // keys of the partitions, in order
	Records    int64    // output records
	OutBytes   int64    // bytes of the output partitions
	InBytes    int64    // bytes of input
	InRecords  int64    // input lines or records mapped
	Wall       time.Duration
	MapWall    time.Duration
	ReduceWall time.Duration
	// MapStats and ReduceStats are the stages' wren job stats (per-call
	// timings, retries, speculation, store requests).
	MapStats, ReduceStats wren.JobStats
	format                Format
}

// Stats returns both stages as one job: the calls of the map stage then
// those of the reduce stage, their counts, store requests and billing
// added, and the job's wall time. Drawn with timeline.Plot, the reduce
// calls start where the map calls end.
func (r *Result[K, V]) Stats() wren.JobStats {
	m, rd := r.MapStats, r.ReduceStats
	s := m
	s.Job = strings.TrimSuffix(m.Job, "-map")
	s.Task = fmt.Sprintf("%d map + %d reduce", m.Calls, rd.Calls)
	s.Calls += rd.Calls
	s.Done += rd.Done
	s.Failed += rd.Failed
	s.Attempts += rd.Attempts
	s.Retried += rd.Retried
	s.Speculative += rd.Speculative
	s.Wall = r.Wall
	s.Requests = addRequests(m.Requests, rd.Requests)
	s.DriverRequests = addRequests(m.DriverRequests, rd.DriverRequests)
	s.Billing = worker.AddBilling(m.Billing, rd.Billing)
	s.Errors = slices.Concat(m.Errors, rd.Errors)
	s.PerCall = slices.Concat(m.PerCall, rd.PerCall)
	return s
}

func addRequests(a, b wren.Requests) wren.Requests {
	return wren.Requests{
		Puts: a.Puts + b.Puts, Gets: a.Gets + b.Gets, Lists: a.Lists + b.Lists, Deletes: a.Deletes + b.Deletes,
		BytesPut: a.BytesPut + b.BytesPut, BytesGot: a.BytesGot + b.BytesGot,
	}
}

// All yields the output's records (OutputRuns format), partition by
// partition.
func (r *Result[K, V]) All(ctx context.Context) iter.Seq2[KV[K, V], error] {
	return func(yield func(KV[K, V], error) bool) {
		if r.format != OutputRuns {
			yield(KV[K, V]{}, errors.New("mapreduce: All reads OutputRuns partitions only"))
			return
		}
		st, err := storeOf(ctx, r.Store)
		if err != nil {
			yield(KV[K, V]{}, err)
			return
		}
		vc := codecFor[V]()
		for _, p := range r.Partitions {
			b, err := blob.ReadAll(ctx, st, p)
			if err != nil {
				yield(KV[K, V]{}, err)
				return
			}
			rr := &runReader{b: b}
			for rr.next() {
				v, err := vc.get(rr.val)
				if !yield(KV[K, V]{K(rr.key), v}, err) {
					return
				}
			}
			if rr.err != nil {
				yield(KV[K, V]{}, rr.err)
				return
			}
		}
	}
}

// KV is an output record.
type KV[K ~string, V any] struct {
	Key   K
	Value V
}

// Collect reads the whole output into a map.
func (r *Result[K, V]) Collect(ctx context.Context) (map[K]V, error) {
	out := map[K]V{}
	for kv, err := range r.All(ctx) {
		if err != nil {
			return nil, err
		}
		out[kv.Key] = kv.Value
	}
	return out, nil
}

// Run runs the job: one wren map of map calls (one per input split), each
// writing its partitioned, sorted output to the shuffle store once per
// attempt; then one wren map of reduce calls (one per partition), each
// reading its partition from every winning map output with parallel reads,
// merging and reducing, and writing its output partition atomically. The
// shuffle objects are deleted when the job ends.
func Run[In any, K ~string, V any](ctx context.Context, ex *wren.Executor, job Job[In, K, V]) (*Result[K, V], error) {
	start := time.Now()
	if job.Map == nil {
		return nil, errors.New("mapreduce: Job.Map is required")
	}
	if job.Partitions <= 0 {
		job.Partitions = ex.Parallelism()
	}
	if len(job.Splitters) > 0 && len(job.Splitters) != job.Partitions-1 {
		return nil, fmt.Errorf("mapreduce: %d splitters for %d partitions", len(job.Splitters), job.Partitions)
	}
	if job.MaxLine <= 0 {
		job.MaxLine = 1 << 20
	}
	if job.Shuffle == "" {
		job.Shuffle = ex.Store().URL()
	}
	var id [4]byte
	rand.Read(id[:])
	jobID := time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(id[:])
	if job.Output == "" {
		job.Output = appendPath(ex.Store().URL(), "mapreduce/"+jobID+"/out")
	}
	if !slices.IsSorted(job.Splitters) {
		return nil, errors.New("mapreduce: Job.Splitters are not sorted")
	}
	out, err := storeOf(ctx, job.Output)
	if err != nil {
		return nil, err
	}
	for a, err := range out.List(ctx, "") {
		if err == nil {
			err = fmt.Errorf("mapreduce: the output %s already holds %s (a job writes to an empty place)", job.Output, a.Key)
		}
		return nil, err
	}
	in, err := storeOf(ctx, job.Input.URL)
	if err != nil {
		return nil, err
	}
	objs, total, err := listInput(ctx, in, job.Input.record)
	if err != nil {
		return nil, err
	}
	if job.SplitSize <= 0 {
		n := int64(4 * max(ex.Parallelism(), 1))
		job.SplitSize = min(max((total+n-1)/n, 1<<20), 32<<20) // n splits, not n+1
	}
	splits := splitInput(objs, job.Input.record, job.SplitSize)
	sh, err := openShuffle(ctx, job.Shuffle)
	if err != nil {
		return nil, err
	}
	defer sh.close()
	if free, err := sh.free(ctx); err != nil {
		return nil, err
	} else if free >= 0 && free < total*5/4 {
		return nil, fmt.Errorf("mapreduce: the shuffle store has %d bytes free, the job may need %d (its input and a margin)", free, total*5/4)
	}
	prefix := "mapreduce/" + jobID + "/shuffle"
	defer sh.deletePrefix(context.WithoutCancel(ctx), prefix)
	// The calls reach the shuffle with credentials of the job's own.
	workerShuffle, revoke, err := sh.forWorkers(ctx, job.Shuffle, prefix)
	if err != nil {
		return nil, err
	}
	defer revoke(context.WithoutCancel(ctx))
	tasks := make([]mapTask, len(splits))
	comb := ""
	if job.Combine != nil {
		comb = job.Combine.name
	}
	for i, s := range splits {
		tasks[i] = mapTask{Input: job.Input.URL, Record: job.Input.record, Split: s, Partitions: job.Partitions, Splitters: job.Splitters,
			Shuffle: workerShuffle, Prefix: prefix, Call: i, Combiner: comb, MaxLine: job.MaxLine}
	}
	// The stages are named after the job (a WithJobID among MapOptions is
	// overridden: two stages cannot share one).
	mopts := append(slices.Clone(job.MapOptions), wren.WithJobID("mr-"+jobID+"-map"))
	ropts := append(slices.Clone(job.MapOptions), wren.WithJobID("mr-"+jobID+"-reduce"))
	mj, err := job.Map.task.Map(ctx, ex, tasks, mopts...)
	if err != nil {
		return nil, err
	}
	maps, err := mj.Results(ctx)
	if err != nil {
		return nil, fmt.Errorf("mapreduce: map stage: %w", err)
	}
	mapWall := time.Since(start)
	rtasks := make([]reduceTask, job.Partitions)
	for p := range rtasks {
		rt := reduceTask{Shuffle: workerShuffle, Partition: p, Output: job.Output, Format: job.Format}
		for _, m := range maps {
			if m.Offsets[p+1] > m.Offsets[p] {
				rt.Objects = append(rt.Objects, m.Object)
				rt.Offsets = append(rt.Offsets, [2]int64{m.Offsets[p], m.Offsets[p+1]})
			}
		}
		rtasks[p] = rt
	}
	var rj *wren.Job[reduceResult]
	if job.Reduce != nil {
		rj, err = job.Reduce.task.Map(ctx, ex, rtasks, ropts...)
	} else {
		rj, err = identityTask.Map(ctx, ex, rtasks, ropts...)
	}
	if err != nil {
		return nil, err
	}
	reds, err := rj.Results(ctx)
	if err != nil {
		return nil, fmt.Errorf("mapreduce: reduce stage: %w", err)
	}
	res := &Result[K, V]{Store: job.Output, InBytes: total, format: job.Format, MapWall: mapWall,
		MapStats: mj.Stats(), ReduceStats: rj.Stats()}
	mj.Clean(context.WithoutCancel(ctx))
	rj.Clean(context.WithoutCancel(ctx))
	for _, m := range maps {
		res.InRecords += m.Records
	}
	for _, r := range reds {
		res.Partitions = append(res.Partitions, r.Key)
		res.Records += r.Records
		res.OutBytes += r.Bytes
	}
	// Last, the mark that the output is whole (a job killed before has
	// none: Validate and readers can tell a partial output).
	done, _ := json.Marshal(Completion{Job: jobID, Partitions: res.Partitions, Records: res.Records, Bytes: res.OutBytes})
	if err := blob.PutBytes(ctx, out, SuccessName, done, blob.PutOptions{}); err != nil {
		return nil, fmt.Errorf("mapreduce: mark the output %s complete: %w", job.Output, err)
	}
	res.Wall = time.Since(start)
	res.ReduceWall = res.Wall - mapWall
	return res, nil
}

// SuccessName is the object a job writes into its output once every
// partition is there (Hadoop's name, so other tools recognise it): a
// Completion, as JSON. An output without it is partial: the job was
// killed, failed, or is still running.
const SuccessName = "_SUCCESS"

// Completion is what SuccessName holds.
type Completion struct {
	Job        string   `json:"job"`
	Partitions []string `json:"partitions"` // keys, in order
	Records    int64    `json:"records"`
	Bytes      int64    `json:"bytes"`
}

// ReadCompletion reads the completion mark of a job's output; an output
// without one is an error wrapping blob.ErrNotFound.
func ReadCompletion(ctx context.Context, output string) (*Completion, error) {
	st, err := storeOf(ctx, output)
	if err != nil {
		return nil, err
	}
	b, err := blob.ReadAll(ctx, st, SuccessName)
	if err != nil {
		return nil, fmt.Errorf("mapreduce: %s: %w", output, err)
	}
	var c Completion
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("mapreduce: %s/%s: %w", output, SuccessName, err)
	}
	return &c, nil
}

// appendPath adds a path to a store URL, before its query.
func appendPath(u, p string) string {
	base, q, _ := strings.Cut(u, "?")
	out := strings.TrimSuffix(base, "/") + "/" + p
	if q != "" {
		out += "?" + q
	}
	return out
}

// prefix is a key's first 8 bytes as a big-endian number (zero-padded):
// keys with different prefixes compare as their prefixes do.
func prefix[T ~string | ~[]byte](key T) uint64 {
	var p uint64
	n := min(len(key), 8)
	for i := range n {
		p |= uint64(key[i]) << (56 - 8*i)
	}
	return p
}
