package mapreduce

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"io"
	"math"
)

// valueCodec appends a value's bytes and reads them back; built in for the
// common types, gob otherwise.
type valueCodec[V any] struct {
	put func(dst []byte, v V) []byte
	get func(b []byte) (V, error)
}

func codecFor[V any]() valueCodec[V] {
	var z V
	switch any(z).(type) {
	case int:
		return valueCodec[V]{
			put: func(dst []byte, v V) []byte { return binary.AppendVarint(dst, int64(any(v).(int))) },
			get: func(b []byte) (V, error) {
				x, n := binary.Varint(b)
				if n <= 0 {
					return z, fmt.Errorf("%w: bad int", ErrCorrupt)
				}
				return any(int(x)).(V), nil
			},
		}
	case int64:
		return valueCodec[V]{
			put: func(dst []byte, v V) []byte { return binary.AppendVarint(dst, any(v).(int64)) },
			get: func(b []byte) (V, error) {
				x, n := binary.Varint(b)
				if n <= 0 {
					return z, fmt.Errorf("%w: bad int64", ErrCorrupt)
				}
				return any(x).(V), nil
			},
		}
	case float64:
		return valueCodec[V]{
			put: func(dst []byte, v V) []byte {
				return binary.LittleEndian.AppendUint64(dst, math.Float64bits(any(v).(float64)))
			},
			get: func(b []byte) (V, error) {
				if len(b) != 8 {
					return z, fmt.Errorf("%w: bad float64", ErrCorrupt)
				}
				return any(math.Float64frombits(binary.LittleEndian.Uint64(b))).(V), nil
			},
		}
	case string:
		return valueCodec[V]{
			put: func(dst []byte, v V) []byte { return append(dst, any(v).(string)...) },
			get: func(b []byte) (V, error) { return any(string(b)).(V), nil },
		}
	case []byte:
		return valueCodec[V]{
			put: func(dst []byte, v V) []byte { return append(dst, any(v).([]byte)...) },
			get: func(b []byte) (V, error) { return any(bytes.Clone(b)).(V), nil },
		}
	}
	return valueCodec[V]{
		put: func(dst []byte, v V) []byte {
			var buf bytes.Buffer
			gob.NewEncoder(&buf).Encode(&v)
			return append(dst, buf.Bytes()...)
		},
		get: func(b []byte) (V, error) {
			var v V
			err := gob.NewDecoder(bytes.NewReader(b)).Decode(&v)
			return v, err
		},
	}
}

// A run is a sequence of records sorted by key: uvarint key length, key,
// uvarint value length, value.
func appendRecord(dst []byte, key string, val []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = binary.AppendUvarint(dst, uint64(len(val)))
	return append(dst, val...)
}

// appendRecordFunc appends a record whose value put appends.
func appendRecordFunc(dst []byte, key string, put func([]byte) []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	// Values are mostly short: reserve one length byte, move if longer.
	at := len(dst)
	dst = append(dst, 0)
	dst = put(dst)
	n := len(dst) - at - 1
	if n < 0x80 {
		dst[at] = byte(n)
		return dst
	}
	var l [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(l[:], uint64(n))
	dst = append(dst, l[:k-1]...)
	copy(dst[at+k:], dst[at+1:at+1+n])
	copy(dst[at:], l[:k])
	return dst
}

// runReader walks a run's records: b, refilled from more (if set) when it
// does not hold a whole record. A record's key and value stay valid until
// the next call of next.
type runReader struct {
	b        []byte
	more     func() ([]byte, error) // the next bytes of the run; io.EOF at its end
	key, val []byte
	pfx      uint64 // prefix(key)
	err      error
}

func (r *runReader) next() bool {
	for r.err == nil {
		switch r.parse() {
		case parsed:
			return true
		case corrupt:
			r.err = fmt.Errorf("%w: bad record", ErrCorrupt)
			return false
		}
		// Short: refill, or the run ends here.
		if r.more == nil {
			if len(r.b) > 0 {
				r.err = fmt.Errorf("%w: truncated record", ErrCorrupt)
			}
			return false
		}
		chunk, err := r.more()
		switch {
		case err == io.EOF:
			r.more = nil
		case err != nil:
			r.err = err
		case len(r.b) == 0:
			r.b = chunk
		default:
			// A new buffer: the previous record's bytes stay as they were.
			r.b = append(append(make([]byte, 0, len(r.b)+len(chunk)), r.b...), chunk...)
		}
	}
	return false
}

const (
	parsed = iota
	short
	corrupt
)

func (r *runReader) parse() int {
	if len(r.b) == 0 {
		return short
	}
	kl, n := binary.Uvarint(r.b)
	if n < 0 {
		return corrupt
	}
	if n == 0 || uint64(len(r.b)-n) < kl {
		return short
	}
	rest := r.b[n+int(kl):]
	vl, m := binary.Uvarint(rest)
	if m < 0 {
		return corrupt
	}
	if m == 0 || uint64(len(rest)-m) < vl {
		return short
	}
	r.key = r.b[n : n+int(kl)]
	r.val = rest[m : m+int(vl)]
	r.b = rest[m+int(vl):]
	r.pfx = prefix(r.key)
	return parsed
}
