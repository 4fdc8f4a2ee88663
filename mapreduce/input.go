package mapreduce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wrenml/wren/blob"
)

// Source is a job's input in a blob store: text split on line boundaries
// (Lines) or fixed-size records split on record boundaries (Records).
type Source[In any] struct {
	URL    string // the store (and prefix) holding the input objects
	record int    // 0: lines; else the record size
}

// Lines reads every object under a store URL (file:///dir/, s3://b/p/, a
// directory) as text, one input per line (without its newline). Objects
// whose name starts with "_" or "." (a job's _SUCCESS, hidden files) are
// not input, as in Hadoop: one job's output can be the next one's input.
func Lines(url string) Source[string] { return Source[string]{URL: url} }

// Records reads every object under a store URL as records of size bytes
// (names starting with "_" or "." skipped, as for Lines); an object whose
// size is not a multiple of size is an error.
func Records(url string, size int) Source[[]byte] { return Source[[]byte]{URL: url, record: size} }

// Range is a byte range of an input object.
type Range struct {
	Key      string
	Off, Len int64
}

// Split is one map call's input: ranges of objects.
type Split struct {
	Ranges []Range
	Bytes  int64
}

// ErrInput reports unusable input.
var ErrInput = errors.New("mapreduce: bad input")

// listInput lists the input objects that hold bytes, and their total
// size; with records, every object must hold whole records.
func listInput(ctx context.Context, st blob.Store, record int) ([]blob.Attrs, int64, error) {
	var objs []blob.Attrs
	var total int64
	for a, err := range st.List(ctx, "") {
		if err != nil {
			return nil, 0, err
		}
		if a.Size == 0 || hidden(a.Key) {
			continue
		}
		if record > 0 && a.Size%int64(record) != 0 {
			return nil, 0, fmt.Errorf("%w: %s holds %d bytes, not a multiple of the %d-byte record", ErrInput, a.Key, a.Size, record)
		}
		objs = append(objs, a)
		total += a.Size
	}
	if total == 0 {
		return nil, 0, fmt.Errorf("%w: no input under %s (empty objects, and names starting with _ or ., are not input)", ErrInput, st.URL())
	}
	return objs, total, nil
}

// hidden reports whether a key's last element starts with "_" or "."
// (_SUCCESS, .crc files): not a job's input, nor a partition.
func hidden(key string) bool {
	name := key[strings.LastIndexByte(key, '/')+1:]
	return strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".")
}

// splitInput cuts the input objects into splits of about size bytes
// (small objects share a split; large ones are cut, on record boundaries
// for records).
func splitInput(objs []blob.Attrs, record int, size int64) []Split {
	step := size
	if record > 0 {
		step = max(size/int64(record), 1) * int64(record)
	}
	var splits []Split
	var cur Split
	for _, a := range objs {
		for off := int64(0); off < a.Size; {
			n := min(step-cur.Bytes, a.Size-off)
			if record > 0 && n%int64(record) != 0 {
				n = max(n/int64(record), 1) * int64(record)
			}
			cur.Ranges = append(cur.Ranges, Range{Key: a.Key, Off: off, Len: n})
			cur.Bytes += n
			off += n
			if cur.Bytes >= step {
				splits = append(splits, cur)
				cur = Split{}
			}
		}
	}
	if cur.Bytes > 0 {
		splits = append(splits, cur)
	}
	return splits
}

// eachLine calls fn with every line that starts in the range, reading past
// its end to finish the last one; a line of more than maxLine bytes is an
// error. A range that does not start an object begins after the first
// newline (the line it cuts belongs to the range before).
func eachLine(ctx context.Context, st blob.Store, r Range, maxLine int, fn func(line []byte) error) error {
	start := r.Off
	if start > 0 {
		start-- // the byte before: is the range's first byte a line start?
	}
	end := r.Off + r.Len
	data, size, err := blob.ReadRange(ctx, st, r.Key, start, end-start)
	if err != nil {
		return err
	}
	pos := 0
	if r.Off > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil // the whole range is inside a line that started before
		}
		pos = i + 1
	}
	// Finish the last line: read on until a newline or the object's end.
	for !bytes.HasSuffix(data, []byte("\n")) && start+int64(len(data)) < size {
		more, _, err := blob.ReadRange(ctx, st, r.Key, start+int64(len(data)), 64<<10)
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(more, '\n'); i >= 0 {
			more = more[:i+1]
		}
		data = append(data, more...)
		if len(data)-int(end-start) > maxLine {
			return fmt.Errorf("%w: %s: a line at byte %d is longer than %d bytes (Job.MaxLine)", ErrInput, r.Key, end, maxLine)
		}
	}
	for pos < len(data) && int64(pos)+start < end {
		i := bytes.IndexByte(data[pos:], '\n')
		var line []byte
		if i < 0 {
			line, pos = data[pos:], len(data)
		} else {
			line, pos = data[pos:pos+i], pos+i+1
		}
		if len(line) > maxLine {
			return fmt.Errorf("%w: %s: a line at byte %d is longer than %d bytes (Job.MaxLine)", ErrInput, r.Key, start+int64(pos-len(line)), maxLine)
		}
		if err := fn(bytes.TrimSuffix(line, []byte("\r"))); err != nil {
			return err
		}
	}
	return nil
}

// storeOf opens an input or output URL, once per process (blob.Shared:
// never closed).
func storeOf(ctx context.Context, u string) (blob.Store, error) {
	if u == "" { // blob.Shared would open the working directory
		return nil, fmt.Errorf("%w: no store URL or directory (an input or output of \"\" is not the working directory)", ErrInput)
	}
	st, err := blob.Shared(ctx, strings.TrimSuffix(u, "/"))
	if err != nil {
		return nil, fmt.Errorf("mapreduce: %w", err)
	}
	return st, nil
}
