package wren

import (
	"context"
	"io"
	"iter"
	"sync/atomic"

	"github.com/wrenml/wren/blob"
)

// Requests counts the store requests of a job: the driver's own (inputs,
// manifest, status reads, output reads, listings) and those its workers
// report in their replies (input reads, output and status writes; the
// requests of an attempt whose worker died before answering are not
// counted). Tries after a transient fault count as requests.
type Requests struct {
	Puts    int64 `json:"puts"`
	Gets    int64 `json:"gets"` // whole and ranged reads
	Lists   int64 `json:"lists"`
	Deletes int64 `json:"deletes"`
	// BytesPut and BytesGot are the bytes the driver wrote and read, and
	// the workers' inputs read and outputs written.
	BytesPut int64 `json:"bytes_put"`
	BytesGot int64 `json:"bytes_got"`
}

// requestCounter counts requests; its fields are updated atomically.
type requestCounter struct {
	puts, gets, lists, deletes, bytesPut, bytesGot atomic.Int64
}

func (c *requestCounter) snapshot() Requests {
	return Requests{
		Puts: c.puts.Load(), Gets: c.gets.Load(), Lists: c.lists.Load(), Deletes: c.deletes.Load(),
		BytesPut: c.bytesPut.Load(), BytesGot: c.bytesGot.Load(),
	}
}

// countingStore is a store that counts the requests made through it.
type countingStore struct {
	blob.Store
	c requestCounter
}

func (s *countingStore) Put(ctx context.Context, key string, r io.Reader, o blob.PutOptions) error {
	s.c.puts.Add(1)
	s.c.bytesPut.Add(max(o.Size, 0))
	return s.Store.Put(ctx, key, r, o)
}

func (s *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	s.c.gets.Add(1)
	r, err := s.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return countingReader{r, &s.c.bytesGot}, nil
}

func (s *countingStore) Range(ctx context.Context, key string, off, n int64) (blob.RangeReader, error) {
	s.c.gets.Add(1)
	r, err := s.Store.Range(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	return countingRangeReader{r, &s.c.bytesGot}, nil
}

func (s *countingStore) Stat(ctx context.Context, key string) (blob.Attrs, error) {
	s.c.gets.Add(1)
	return s.Store.Stat(ctx, key)
}

func (s *countingStore) List(ctx context.Context, prefix string) iter.Seq2[blob.Attrs, error] {
	s.c.lists.Add(1)
	return s.Store.List(ctx, prefix)
}

func (s *countingStore) Delete(ctx context.Context, key string) error {
	s.c.deletes.Add(1)
	return s.Store.Delete(ctx, key)
}

type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// Size passes the wrapped reader's size on (blob.ReadAll uses it).
func (r countingReader) Size() int64 {
	if s, ok := r.ReadCloser.(interface{ Size() int64 }); ok {
		return s.Size()
	}
	return -1
}

type countingRangeReader struct {
	blob.RangeReader
	n *atomic.Int64
}

func (r countingRangeReader) Read(p []byte) (int, error) {
	n, err := r.RangeReader.Read(p)
	r.n.Add(int64(n))
	return n, err
}
