// Package memblob is an in-memory blob.Store for fast unit tests, registered
// for "mem://name" URLs: every Open of the same name in one process reaches the
// same store. It passes the same conformance suite as the real drivers, but it
// is no substitute for them in tests of a backend.
package memblob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wrenml/wren/blob"
)

var (
	namedMu sync.Mutex
	named   = map[string]*Store{}
)

func init() {
	blob.RegisterScheme("mem", func(ctx context.Context, u *url.URL) (blob.Store, error) {
		namedMu.Lock()
		defer namedMu.Unlock()
		name := u.Host + u.Path
		s := named[name]
		if s == nil {
			s = New()
			s.name = name
			named[name] = s
		}
		return s, nil
	})
}

type object struct {
	data []byte
	mod  time.Time
}

// Store is an in-memory blob.Store, safe for concurrent use.
type Store struct {
	name string
	mu   sync.RWMutex
	objs map[string]object
}

var _ blob.Store = (*Store)(nil)

// New returns an empty, unnamed store.
func New() *Store { return &Store{objs: map[string]object{}} }

// URL implements blob.Store. An unnamed store has a URL that reaches a
// different, empty store.
func (s *Store) URL() string { return "mem://" + s.name }

// Close implements blob.Store.
func (s *Store) Close() error { return nil }

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts blob.PutOptions) error {
	if err := blob.ValidateKey(key); err != nil {
		return err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("memblob: put %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memblob: put %q: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objs[key]; ok && opts.IfNotExist {
		return fmt.Errorf("memblob: put %q: %w", key, blob.ErrExists)
	}
	s.objs[key] = object{data: data, mod: time.Now()}
	return nil
}

type reader struct {
	*bytes.Reader
	n int64
}

func (r reader) Close() error { return nil }
func (r reader) Size() int64  { return r.n }

// Get implements blob.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := blob.ValidateKey(key); err != nil {
		return nil, err
	}
	s.mu.RLock()
	o, ok := s.objs[key]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("memblob: get %q: %w", key, blob.ErrNotFound)
	}
	return reader{bytes.NewReader(o.data), int64(len(o.data))}, nil
}

// Range implements blob.Store.
func (s *Store) Range(ctx context.Context, key string, off, n int64) (blob.RangeReader, error) {
	if err := blob.CheckRange(key, off); err != nil {
		return nil, err
	}
	s.mu.RLock()
	o, ok := s.objs[key]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("memblob: range %q: %w", key, blob.ErrNotFound)
	}
	size := int64(len(o.data))
	lo, hi := min(off, size), size
	if n >= 0 {
		hi = min(hi, lo+n)
	}
	return rangeReader{bytes.NewReader(o.data[lo:hi]), size}, nil
}

type rangeReader struct {
	*bytes.Reader
	size int64
}

func (r rangeReader) ObjectSize() int64 { return r.size }
func (r rangeReader) Close() error      { return nil }

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, key string) (blob.Attrs, error) {
	if err := blob.ValidateKey(key); err != nil {
		return blob.Attrs{}, err
	}
	s.mu.RLock()
	o, ok := s.objs[key]
	s.mu.RUnlock()
	if !ok {
		return blob.Attrs{}, fmt.Errorf("memblob: stat %q: %w", key, blob.ErrNotFound)
	}
	return blob.Attrs{Key: key, Size: int64(len(o.data)), ModTime: o.mod}, nil
}

// List implements blob.Store.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[blob.Attrs, error] {
	return func(yield func(blob.Attrs, error) bool) {
		if err := blob.ValidatePrefix(prefix); err != nil {
			yield(blob.Attrs{}, err)
			return
		}
		s.mu.RLock()
		var out []blob.Attrs
		for k, o := range s.objs {
			if strings.HasPrefix(k, prefix) {
				out = append(out, blob.Attrs{Key: k, Size: int64(len(o.data)), ModTime: o.mod})
			}
		}
		s.mu.RUnlock()
		sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
		for _, a := range out {
			if !yield(a, nil) {
				return
			}
		}
	}
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blob.ValidateKey(key); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.objs, key)
	s.mu.Unlock()
	return nil
}
