package mapreduce

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"fmt"
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

// runReader walks a run's records.
type runReader struct {
	b        []byte
	key, val []byte
	pfx      uint64 // prefix(key)
	err      error
}

func (r *runReader) next() bool {
	if len(r.b) == 0 || r.err != nil {
		return false
	}
	kl, n := binary.Uvarint(r.b)
	if n <= 0 || uint64(len(r.b)-n) < kl {
		r.err = fmt.Errorf("%w: truncated record", ErrCorrupt)
		return false
	}
	r.key, r.b = r.b[n:n+int(kl)], r.b[n+int(kl):]
	vl, n := binary.Uvarint(r.b)
	if n <= 0 || uint64(len(r.b)-n) < vl {
		r.err = fmt.Errorf("%w: truncated record", ErrCorrupt)
		return false
	}
	r.val, r.b = r.b[n:n+int(vl)], r.b[n+int(vl):]
	r.pfx = prefix(r.key)
	return true
}
