package mapreduce

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sync/errgroup"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
)

// The sort benchmark's record: 100 bytes, the first 10 the key.
const (
	RecordSize = 100
	KeySize    = 10
)

// GenOptions say what GenerateRecords writes.
type GenOptions struct {
	// Records is the number of records (Records*100 bytes).
	Records int64
	// Files is the number of objects they are spread over; 0 means one per
	// 64 MiB.
	Files int
	// ASCII makes keys printable (' ' to '~'): every record is then a line
	// of 98 characters and "\r\n", and GNU sort can sort the files.
	// Otherwise keys are random bytes.
	ASCII bool
	// Seed makes the records; the same seed gives the same records.
	Seed uint64
}

// Checksum is the order-independent digest of a set of records: their
// count and the sum of their 64-bit hashes.
type Checksum struct {
	Records int64
	Sum     uint64
}

// Add counts one record.
func (c *Checksum) Add(rec []byte) {
	c.Records++
	c.Sum += xxhash.Sum64(rec)
}

// Merge adds another set's checksum.
func (c *Checksum) Merge(o Checksum) {
	c.Records += o.Records
	c.Sum += o.Sum
}

// GenerateRecords writes opts.Records sort-benchmark records to st as
// objects prefix+"part-NNNNN", generated in parallel, and returns their
// checksum. Record i is a function of the seed and i only: its key is
// random, then come two spaces, i in 32 hex digits, two spaces, 52 filler
// characters and "\r\n" (the layout of gensort's ASCII records).
func GenerateRecords(ctx context.Context, st blob.Store, prefix string, opts GenOptions) (Checksum, error) {
	if opts.Records <= 0 {
		return Checksum{}, errors.New("mapreduce: GenOptions.Records must be positive")
	}
	files := opts.Files
	if files <= 0 {
		files = int(max(1, (opts.Records*RecordSize+(64<<20)-1)/(64<<20)))
	}
	files = int(min(int64(files), opts.Records))
	sums := make([]Checksum, files)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	per := opts.Records / int64(files)
	for f := range files {
		from := int64(f) * per
		to := from + per
		if f == files-1 {
			to = opts.Records
		}
		g.Go(func() error {
			buf := make([]byte, 0, (to-from)*RecordSize)
			for i := from; i < to; i++ {
				n := len(buf)
				buf = appendGenRecord(buf, i, opts.ASCII, opts.Seed)
				sums[f].Add(buf[n:])
			}
			return blob.PutBytes(gctx, st, fmt.Sprintf("%spart-%05d", prefix, f), buf, blob.PutOptions{})
		})
	}
	if err := g.Wait(); err != nil {
		return Checksum{}, fmt.Errorf("mapreduce: generate: %w", err)
	}
	var sum Checksum
	for _, s := range sums {
		sum.Merge(s)
	}
	return sum, nil
}

const hexDigits = "0123456789ABCDEF"

func appendGenRecord(dst []byte, i int64, ascii bool, seed uint64) []byte {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], seed)
	binary.LittleEndian.PutUint64(b[8:], uint64(i))
	h1 := xxhash.Sum64(b[:])
	b[0] ^= 0x5a
	h2 := xxhash.Sum64(b[:])
	var key [KeySize]byte
	binary.LittleEndian.PutUint64(key[:8], h1)
	binary.LittleEndian.PutUint16(key[8:], uint16(h2))
	if ascii {
		x, y := h1, h2
		for k := range key {
			if k == 8 {
				x = y
			}
			key[k] = ' ' + byte(x%95)
			x /= 95
		}
	}
	dst = append(dst, key[:]...)
	dst = append(dst, ' ', ' ')
	for s := 124; s >= 0; s -= 4 {
		if s >= 64 {
			dst = append(dst, '0')
		} else {
			dst = append(dst, hexDigits[(uint64(i)>>uint(s))&15])
		}
	}
	dst = append(dst, ' ', ' ')
	for k := range 52 {
		dst = append(dst, hexDigits[(uint64(i)+uint64(k/4))&15])
	}
	return append(dst, '\r', '\n')
}

// Splitters samples the records under a store URL and returns n-1 keys
// that cut them into n partitions of about equal size: blocks of records
// spread evenly over every object, read in parallel.
func Splitters(ctx context.Context, input string, n int) ([]string, error) {
	st, err := storeOf(ctx, input)
	if err != nil {
		return nil, err
	}
	objs, total, err := listInput(ctx, st, RecordSize)
	if err != nil {
		return nil, err
	}
	return sampleSplitters(ctx, st, objs, total, n)
}

// sampleSplitters is Splitters over listed objects.
func sampleSplitters(ctx context.Context, st blob.Store, objs []blob.Attrs, total int64, n int) ([]string, error) {
	if n <= 1 {
		return nil, nil
	}
	// About 200 keys per partition, in blocks of 100 records.
	const block = 100 * RecordSize
	blocks := min(max(2*n, 16), 4096)
	type job struct {
		key string
		off int64
	}
	var jobs []job
	for _, a := range objs {
		k := max(1, int(int64(blocks)*a.Size/total))
		for j := range k {
			off := (a.Size / int64(k) * int64(j)) / RecordSize * RecordSize
			jobs = append(jobs, job{a.Key, off})
		}
	}
	keys := make([][]string, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, j := range jobs {
		g.Go(func() error {
			data, _, err := blob.ReadRange(gctx, st, j.key, j.off, block)
			if err != nil {
				return err
			}
			for r := 0; r+RecordSize <= len(data); r += RecordSize {
				keys[i] = append(keys[i], string(data[r:r+KeySize]))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("mapreduce: sample: %w", err)
	}
	all := slices.Concat(keys...)
	slices.Sort(all)
	out := make([]string, n-1)
	for i := range out {
		out[i] = all[(i+1)*len(all)/n]
	}
	return out, nil
}

// sortMap emits each record under its key.
var sortMap = RegisterMap("sort", func(ctx context.Context, rec []byte, emit func(string, []byte)) error {
	// The key aliases the record: the map task's input buffer, never
	// written, outlives every key it holds.
	emit(unsafe.String(unsafe.SliceData(rec), KeySize), rec)
	return nil
})

// SortJob is a sort of sort-benchmark records.
type SortJob struct {
	// Input and Output are store URLs (or directories); the output must be
	// empty.
	Input, Output string
	// Partitions is the number of output partitions; 0 means one per
	// 64 MiB of input, at least the executor's parallelism.
	Partitions int
	// Shuffle is the shuffle store (see Job.Shuffle).
	Shuffle string
	// SplitSize is the input bytes per map call (see Job.SplitSize).
	SplitSize int64
	// MapOptions adjust both stages' maps.
	MapOptions []wren.MapOption
}

// Sort sorts the records under job.Input by key into partitions
// part-NNNNN under job.Output, in key order: it samples splitters, maps
// records to key ranges, and merges each range.
func Sort(ctx context.Context, ex *wren.Executor, job SortJob) (*Result[string, []byte], error) {
	st, err := storeOf(ctx, job.Input)
	if err != nil {
		return nil, err
	}
	objs, total, err := listInput(ctx, st, RecordSize)
	if err != nil {
		return nil, err
	}
	if job.Partitions <= 0 {
		job.Partitions = max(ex.Parallelism(), int(total/(64<<20)))
	}
	sp, err := sampleSplitters(ctx, st, objs, total, job.Partitions)
	if err != nil {
		return nil, err
	}
	return Run(ctx, ex, Job[[]byte, string, []byte]{
		Input:      Records(job.Input, RecordSize),
		Map:        sortMap,
		Partitions: job.Partitions,
		Splitters:  sp,
		Shuffle:    job.Shuffle,
		Output:     job.Output,
		Format:     OutputValues,
		SplitSize:  job.SplitSize,
		MapOptions: job.MapOptions,
	})
}

// summaryTask reads one object of records.
type summaryTask struct {
	Store, Key string
}

// Summary describes one object of records.
type Summary struct {
	Key         string
	Sum         Checksum
	First, Last []byte // keys
	// Unsorted is the index of the first record whose key is below its
	// predecessor's, or -1.
	Unsorted int64
	// Duplicates counts records whose key equals their predecessor's.
	Duplicates int64
}

var summarize = wren.Register("mapreduce.sort.summary", func(ctx context.Context, t summaryTask) (Summary, error) {
	st, err := storeOf(ctx, t.Store)
	if err != nil {
		return Summary{}, err
	}
	data, err := blob.ReadAll(ctx, st, t.Key)
	if err != nil {
		return Summary{}, err
	}
	s := Summary{Key: t.Key, Unsorted: -1}
	if len(data)%RecordSize != 0 {
		return s, fmt.Errorf("%w: %s holds %d bytes, not a multiple of the %d-byte record", ErrInput, t.Key, len(data), RecordSize)
	}
	var prev []byte
	for i := 0; i < len(data); i += RecordSize {
		rec := data[i : i+RecordSize]
		s.Sum.Add(rec)
		key := rec[:KeySize]
		if prev != nil {
			switch c := bytes.Compare(prev, key); {
			case c > 0 && s.Unsorted < 0:
				s.Unsorted = int64(i / RecordSize)
			case c == 0:
				s.Duplicates++
			}
		}
		prev = key
	}
	if len(data) > 0 {
		s.First = bytes.Clone(data[:KeySize])
		s.Last = bytes.Clone(prev)
	}
	return s, nil
})

// partitionDiff names the first partition one list has and the other not.
func partitionDiff(have, want []string) string {
	for _, k := range want {
		if !slices.Contains(have, k) {
			return k + " is missing"
		}
	}
	for _, k := range have {
		if !slices.Contains(want, k) {
			return k + " was not written by it"
		}
	}
	return "they differ"
}

// Report is the outcome of Validate.
type Report struct {
	// Sum is the output's checksum; Input the input's, when given.
	Sum, Input Checksum
	Partitions int
	Duplicates int64
	// Problems lists what is wrong; empty means the output is a sort of
	// the input.
	Problems []string
}

// OK says the output is sorted and, if an input was given, holds exactly
// its records.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Validate checks a sort's output, as valsort does: every partition
// sorted, partitions in key order (by their keys' order), and, if input is
// not "", the output's record count and order-independent checksum equal
// to the input's. Beyond valsort, the output must be whole: its job's
// completion mark (SuccessName) present, naming the partitions there and
// their records. The objects are read by a wren map, one call each.
func Validate(ctx context.Context, ex *wren.Executor, output, input string) (*Report, error) {
	sum := func(u string) ([]Summary, error) {
		st, err := storeOf(ctx, u)
		if err != nil {
			return nil, err
		}
		all, err := blob.Keys(ctx, st, "")
		if err != nil {
			return nil, err
		}
		keys := slices.DeleteFunc(all, hidden)
		if len(keys) == 0 {
			return nil, fmt.Errorf("%w: nothing under %s", ErrInput, u)
		}
		tasks := make([]summaryTask, len(keys))
		for i, k := range keys {
			tasks[i] = summaryTask{Store: u, Key: k}
		}
		j, err := summarize.Map(ctx, ex, tasks)
		if err != nil {
			return nil, err
		}
		defer j.Clean(context.WithoutCancel(ctx))
		return j.Results(ctx)
	}
	outs, err := sum(output)
	if err != nil {
		return nil, fmt.Errorf("mapreduce: validate %s: %w", output, err)
	}
	r := &Report{Partitions: len(outs)}
	// A job writes its completion mark last: without it the output is
	// partial (the sort was killed, or runs still), however sorted.
	c, err := ReadCompletion(ctx, output)
	switch {
	case errors.Is(err, blob.ErrNotFound):
		r.Problems = append(r.Problems, fmt.Sprintf("no %s: the job writing %s did not finish (killed, failed or still running)", SuccessName, output))
	case err != nil:
		return nil, fmt.Errorf("mapreduce: validate %s: %w", output, err)
	default:
		var have []string
		var records int64
		for _, s := range outs {
			have = append(have, s.Key)
			records += s.Sum.Records
		}
		slices.Sort(have)
		want := slices.Sorted(slices.Values(c.Partitions))
		if !slices.Equal(have, want) {
			r.Problems = append(r.Problems, fmt.Sprintf("the output holds %d partitions, its job wrote %d: %s", len(have), len(want), partitionDiff(have, want)))
		} else if records != c.Records {
			r.Problems = append(r.Problems, fmt.Sprintf("the output holds %d records, its job wrote %d", records, c.Records))
		}
		if slices.Equal(have, want) {
			// Partitions follow one another in the job's order, not their
			// names' (part-100000 sorts before part-10001).
			at := make(map[string]int, len(c.Partitions))
			for i, k := range c.Partitions {
				at[k] = i
			}
			slices.SortFunc(outs, func(a, b Summary) int { return at[a.Key] - at[b.Key] })
		}
	}
	var last []byte
	var lastKey string
	for _, s := range outs {
		r.Sum.Merge(s.Sum)
		r.Duplicates += s.Duplicates
		if s.Unsorted >= 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: record %d is out of order", s.Key, s.Unsorted))
		}
		if s.Sum.Records == 0 {
			continue
		}
		if last != nil {
			switch c := bytes.Compare(last, s.First); {
			case c > 0:
				r.Problems = append(r.Problems, fmt.Sprintf("%s starts below the end of %s", s.Key, lastKey))
			case c == 0:
				r.Duplicates++
			}
		}
		last, lastKey = s.Last, s.Key
	}
	if input != "" {
		ins, err := sum(input)
		if err != nil {
			return nil, fmt.Errorf("mapreduce: validate %s: %w", input, err)
		}
		for _, s := range ins {
			r.Input.Merge(s.Sum)
		}
		if r.Input.Records != r.Sum.Records {
			r.Problems = append(r.Problems, fmt.Sprintf("the output holds %d records, the input %d", r.Sum.Records, r.Input.Records))
		} else if r.Input.Sum != r.Sum.Sum {
			r.Problems = append(r.Problems, fmt.Sprintf("the output's checksum %016x differs from the input's %016x: records changed", r.Sum.Sum, r.Input.Sum))
		}
	}
	return r, nil
}
