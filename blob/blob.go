package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"
)

// Sentinel errors returned (wrapped) by every driver. Check them with errors.Is.
var (
	// ErrNotFound reports that no object exists under the key.
	ErrNotFound = errors.New("blob: object not found")
	// ErrExists reports that a Put with IfNotExist found an object already there.
	ErrExists = errors.New("blob: object already exists")
	// ErrInvalidKey reports a key that is empty, too long, not valid UTF-8, or that
	// could escape the store's root (".." or "." segments, a leading "/", a NUL byte,
	// a backslash, an empty segment).
	ErrInvalidKey = errors.New("blob: invalid key")
	// ErrUnknownScheme reports a store URL whose scheme no driver has registered.
	ErrUnknownScheme = errors.New("blob: unknown store URL scheme")
	// ErrInvalidRange reports a Range with a negative offset.
	ErrInvalidRange = errors.New("blob: invalid range")
)

// RangeReader reads part of an object.
type RangeReader interface {
	io.ReadCloser
	// ObjectSize is the size of the whole object, not of the range.
	ObjectSize() int64
}

// MaxKeyLen is the longest key accepted, in bytes (S3's limit).
const MaxKeyLen = 1024

// Attrs describes a stored object.
type Attrs struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// PutOptions adjust a Put. The zero value writes unconditionally.
type PutOptions struct {
	// Ephemeral marks scratch data of a running job (inputs, outputs,
	// statuses): it must appear atomically, but it need not survive a crash
	// of the machine, since a lost object only makes its call run again.
	// Drivers that pay for durability (fileblob's fsync) skip it for
	// ephemeral objects unless told otherwise (fileblob's sync=always).
	Ephemeral bool
	// IfNotExist makes the Put fail with ErrExists when the key already holds an
	// object; the check and the write are one atomic step. It is how the worker
	// makes "first status wins" safe when attempts race.
	IfNotExist bool
	// Size is the body's length when known, or 0 when unknown. Drivers use it to
	// choose between a single request and a multipart upload.
	Size int64
}

// Store is a flat namespace of immutable objects addressed by "/"-separated
// keys. Writes are atomic: a reader sees the old object, the new object, or no
// object, never a partial one. Implementations are safe for concurrent use.
type Store interface {
	// Put stores the bytes read from r under key, replacing any object there
	// (unless opts.IfNotExist). The object becomes visible only when complete.
	Put(ctx context.Context, key string, r io.Reader, opts PutOptions) error
	// Get opens the object for streaming; the caller closes the reader.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Range opens n bytes of the object starting at byte off (n < 0: to
	// the end), for streaming; the caller closes the reader. Fewer than n
	// bytes come back only when the object ends first (none when off is at
	// or past its end). The reader's ObjectSize is the whole object's size.
	// A negative off is ErrInvalidRange.
	Range(ctx context.Context, key string, off, n int64) (RangeReader, error)
	// Stat returns the object's attributes, or ErrNotFound.
	Stat(ctx context.Context, key string) (Attrs, error)
	// List yields every object whose key starts with prefix, in lexical key order.
	// An error ends the sequence.
	List(ctx context.Context, prefix string) iter.Seq2[Attrs, error]
	// Delete removes the object. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// URL returns the URL that Open accepts to reach this store again, for
	// example from a worker process.
	URL() string
	// Close releases the store's resources.
	Close() error
}

// ValidateKey returns an error wrapping ErrInvalidKey when key is not a safe
// object key. Every driver calls it before touching its backend, so a key from
// a user can never name anything outside the store's root.
func ValidateKey(key string) error {
	if err := checkKey(key, false); err != nil {
		return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, err)
	}
	return nil
}

// ValidatePrefix is ValidateKey for List prefixes: the empty prefix and a
// trailing "/" are allowed.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := checkKey(prefix, true); err != nil {
		return fmt.Errorf("%w prefix %q: %s", ErrInvalidKey, prefix, err)
	}
	return nil
}

func checkKey(key string, prefix bool) error {
	switch {
	case key == "":
		return errors.New("empty")
	case len(key) > MaxKeyLen:
		return fmt.Errorf("longer than %d bytes", MaxKeyLen)
	case !utf8.ValidString(key):
		return errors.New("not valid UTF-8")
	case strings.ContainsRune(key, 0):
		return errors.New("contains a NUL byte")
	case strings.ContainsRune(key, '\\'):
		return errors.New(`contains a backslash`)
	case strings.HasPrefix(key, "/"):
		return errors.New("absolute path")
	}
	segs := strings.Split(key, "/")
	for i, s := range segs {
		last := i == len(segs)-1
		switch {
		case s == "" && last && prefix:
			// "dir/" is a fine prefix.
		case s == "":
			return errors.New("empty path segment")
		case s == "." || s == "..":
			return fmt.Errorf("path segment %q", s)
		case strings.HasPrefix(s, TempPrefix):
			return fmt.Errorf("segment starts with reserved %q", TempPrefix)
		}
	}
	return nil
}

// TempPrefix starts the names of the temporary files a driver may write
// while an object is being put; keys may not use it.
const TempPrefix = ".wren-tmp-"

// Opener opens a store from a parsed URL. Drivers register one per scheme.
type Opener func(ctx context.Context, u *url.URL) (Store, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]Opener{}
)

// RegisterScheme makes Open accept URLs with the given scheme. Drivers call it
// from init. It panics if the scheme is already registered.
func RegisterScheme(scheme string, o Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	if _, dup := openers[scheme]; dup {
		panic("blob: RegisterScheme called twice for scheme " + scheme)
	}
	openers[scheme] = o
}

// driverPackages are the packages of wren's own drivers, named in the error
// of a URL whose driver the program did not link.
var driverPackages = map[string]string{
	"file": "github.com/wrenml/wren/blob/fileblob",
	"mem":  "github.com/wrenml/wren/blob/memblob",
	"s3":   "github.com/wrenml/wren/blob/s3blob",
}

// Open opens the store a URL names, for example "file:///data/wren" or
// "s3://bucket/prefix?endpoint=http://127.0.0.1:9000". The driver must be
// linked in: the root package wren links fileblob and memblob; s3blob
// comes with the Lambda backend and package config, or by
// import _ "github.com/wrenml/wren/blob/s3blob". Without its driver, a
// URL of one of wren's schemes fails with ErrUnknownScheme and the import
// to add.
func Open(ctx context.Context, rawURL string) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("blob: open %q: %w", rawURL, err)
	}
	openersMu.RLock()
	o := openers[u.Scheme]
	openersMu.RUnlock()
	if o == nil {
		if pkg, ok := driverPackages[u.Scheme]; ok {
			return nil, fmt.Errorf("blob: open %q: %w %q: the program does not link its driver; add import _ %q", rawURL, ErrUnknownScheme, u.Scheme, pkg)
		}
		return nil, fmt.Errorf("blob: open %q: %w %q (known: %s)", rawURL, ErrUnknownScheme, u.Scheme, strings.Join(Schemes(), ", "))
	}
	s, err := o(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("blob: open %q: %w", rawURL, err)
	}
	return s, nil
}

// Schemes lists the registered URL schemes, sorted.
func Schemes() []string {
	openersMu.RLock()
	defer openersMu.RUnlock()
	out := make([]string, 0, len(openers))
	for k := range openers {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// PutBytes stores data under key.
func PutBytes(ctx context.Context, s Store, key string, data []byte, opts PutOptions) error {
	opts.Size = int64(len(data))
	return s.Put(ctx, key, bytes.NewReader(data), opts)
}

// ReadAll reads a whole object. A Get error is returned as is (ErrNotFound
// stays detectable).
func ReadAll(ctx context.Context, s Store, key string) ([]byte, error) {
	r, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if sz, ok := r.(interface{ Size() int64 }); ok && sz.Size() > 0 {
		buf := make([]byte, sz.Size())
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("blob: read %q: %w", key, err)
		}
		return buf, nil
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("blob: read %q: %w", key, err)
	}
	return b, nil
}

// ReadRange reads n bytes of an object from off (n < 0: to the end) and
// returns them with the whole object's size.
func ReadRange(ctx context.Context, s Store, key string, off, n int64) ([]byte, int64, error) {
	r, err := s.Range(ctx, key, off, n)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	size := r.ObjectSize()
	want := size - off
	if n >= 0 {
		want = min(want, n)
	}
	buf := make([]byte, max(want, 0))
	m, err := io.ReadFull(r, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, size, fmt.Errorf("blob: read %q [%d, +%d): %w", key, off, n, err)
	}
	return buf[:m], size, nil
}

// CheckRange validates Range's arguments for drivers: the key, and off.
func CheckRange(key string, off int64) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if off < 0 {
		return fmt.Errorf("%w: offset %d of %q", ErrInvalidRange, off, key)
	}
	return nil
}

// SharedPutter is a Store that can store the same bytes under several keys
// for about the cost of one object (fileblob: one file, hard-linked).
type SharedPutter interface {
	// PutShared stores data under each key, as Put would, and returns one
	// error per key (nil, an error wrapping ErrExists with IfNotExist, or
	// another error). Keys succeed or fail independently.
	PutShared(ctx context.Context, keys []string, data []byte, opts PutOptions) []error
}

// PutShared stores data under each key: in one go on a SharedPutter, else
// with a Put per key. It returns one error per key.
func PutShared(ctx context.Context, s Store, keys []string, data []byte, opts PutOptions) []error {
	if sp, ok := s.(SharedPutter); ok {
		return sp.PutShared(ctx, keys, data, opts)
	}
	errs := make([]error, len(keys))
	for i, k := range keys {
		errs[i] = PutBytes(ctx, s, k, data, opts)
	}
	return errs
}

// TempSweeper is a Store whose puts may leave temporary objects behind
// when the writer dies (fileblob on a filesystem without unnamed files).
type TempSweeper interface {
	// SweepTemp removes the temporaries older than age (no live put takes
	// that long to write one) and returns how many it removed.
	SweepTemp(ctx context.Context, age time.Duration) (int, error)
}

// StaleTemp is the age past which a temporary object is a dead writer's.
const StaleTemp = time.Hour

// Keys collects the keys under prefix.
func Keys(ctx context.Context, s Store, prefix string) ([]string, error) {
	var out []string
	for a, err := range s.List(ctx, prefix) {
		if err != nil {
			return out, err
		}
		out = append(out, a.Key)
	}
	return out, nil
}

// BatchDeleter is a Store that deletes many keys in one request (S3's
// DeleteObjects takes up to 1,000).
type BatchDeleter interface {
	// DeleteBatch deletes the keys (at most MaxDeleteBatch); a missing key
	// is not an error.
	DeleteBatch(ctx context.Context, keys []string) error
}

// PrefixDeleter is a Store that deletes everything under a prefix at once
// (fileblob: a directory).
type PrefixDeleter interface {
	// DeletePrefix deletes every object under prefix and returns how many
	// it deleted.
	DeletePrefix(ctx context.Context, prefix string) (int, error)
}

// MaxDeleteBatch is the most keys DeleteKeys gives one DeleteBatch.
const MaxDeleteBatch = 1000

// deleteParallel bounds the deletes (or batches) DeleteKeys runs at once.
const deleteParallel = 16

// DeleteKeys deletes keys: in batches of MaxDeleteBatch on a BatchDeleter,
// else one by one, deleteParallel at a time either way. A missing key is
// not an error.
func DeleteKeys(ctx context.Context, s Store, keys []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteParallel)
	if bd, ok := s.(BatchDeleter); ok {
		for lo := 0; lo < len(keys); lo += MaxDeleteBatch {
			batch := keys[lo:min(lo+MaxDeleteBatch, len(keys))]
			g.Go(func() error { return bd.DeleteBatch(gctx, batch) })
		}
		return g.Wait()
	}
	for _, k := range keys {
		g.Go(func() error {
			if err := s.Delete(gctx, k); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

// DeletePrefix deletes every object under prefix and returns how many it
// deleted: at once on a PrefixDeleter, else listing and deleting in
// parallel batches as the listing goes (bounded time and memory for
// millions of objects).
func DeletePrefix(ctx context.Context, s Store, prefix string) (int, error) {
	if pd, ok := s.(PrefixDeleter); ok {
		return pd.DeletePrefix(ctx, prefix)
	}
	n := 0
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	var batch []string
	flush := func() {
		keys := batch
		batch = nil
		g.Go(func() error { return DeleteKeys(gctx, s, keys) })
	}
	for a, err := range s.List(ctx, prefix) {
		if err != nil {
			g.Wait()
			return n, err
		}
		batch = append(batch, a.Key)
		n++
		if len(batch) == 4*MaxDeleteBatch {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	if err := g.Wait(); err != nil {
		return n, err
	}
	return n, nil
}

// shared holds the stores Shared opened, by URL.
var shared sync.Map

// Shared returns the store a URL opens (Open), opened once per process and
// kept for its life (a directory path means its file:// store), so that a worker process opens each store once
// whatever its calls do (the worker runtime, featurize, sgd and mapreduce
// calls all go through it). Callers must not Close it. A failed open is
// not kept: the next call tries again.
func Shared(ctx context.Context, url string) (Store, error) {
	if !strings.Contains(url, "://") {
		// A directory: the file:// store of its absolute path.
		abs, err := filepath.Abs(url)
		if err != nil {
			return nil, fmt.Errorf("blob: store %q: %w", url, err)
		}
		url = "file://" + filepath.ToSlash(abs)
	}
	if s, ok := shared.Load(url); ok {
		return s.(Store), nil
	}
	s, err := Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if prev, loaded := shared.LoadOrStore(url, s); loaded {
		s.Close()
		return prev.(Store), nil
	}
	return s, nil
}
