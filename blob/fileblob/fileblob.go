// Package fileblob is the blob.Store driver for a local directory, registered
// for "file://" URLs.
//
// Each object is a file under the root directory. A Put writes an unnamed
// file in its destination's directory (Linux's O_TMPFILE; elsewhere a
// temporary file), fsyncs it (see SyncMode), then links it into place (for
// PutOptions.IfNotExist, a hard link, which fails atomically when the key is
// taken; otherwise a link under a temporary name renamed over the key):
// readers never see a partial object, after a crash a synced object is
// either complete or absent, and a writer killed while it writes leaves
// nothing behind. Temporary files that a dead writer did leave (on a
// filesystem without unnamed files) are removed by SweepTemp once stale,
// which wren's driver runs in the background and wren jobs clean runs.
// Directory entries are not fsynced, so a crash of the machine can lose the
// latest puts.
//
// Ephemeral objects (PutOptions.Ephemeral: a running job's inputs, outputs
// and statuses) are not fsynced by default: they need atomicity, not
// durability, and a crash of the machine only makes their calls run again.
// The URL parameter sync=auto (the default), sync=always or sync=never
// ("file:///data/wren?sync=always") chooses.
package fileblob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wrenml/wren/blob"
)

func init() {
	blob.RegisterScheme("file", func(ctx context.Context, u *url.URL) (blob.Store, error) {
		p := u.Path
		if u.Host != "" && u.Host != "localhost" {
			// file://./rel or file://rel/dir: treat host as the first path element.
			p = u.Host + u.Path
		}
		if u.Opaque != "" {
			p = u.Opaque
		}
		if p == "" {
			return nil, errors.New("fileblob: URL has no path")
		}
		var o Options
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return nil, fmt.Errorf("fileblob: URL query %q: %w", u.RawQuery, err)
		}
		for k, v := range q {
			if k != "sync" || len(v) != 1 {
				return nil, fmt.Errorf("fileblob: unknown or repeated URL parameter %q (known: sync)", k)
			}
			if o.Sync, err = ParseSync(v[0]); err != nil {
				return nil, err
			}
		}
		return OpenOptions(p, o)
	})
}

// SyncMode says which puts are fsynced before they become visible.
type SyncMode int

const (
	// SyncAuto fsyncs every put but ephemeral ones (blob.PutOptions.Ephemeral:
	// a running job's inputs, outputs and statuses, which need atomicity,
	// not durability). The default; URL parameter sync=auto.
	SyncAuto SyncMode = iota
	// SyncAlways fsyncs every put (sync=always).
	SyncAlways
	// SyncNever fsyncs nothing (sync=never): a crash of the machine may lose
	// recent puts, which are still atomic.
	SyncNever
)

var syncNames = []string{"auto", "always", "never"}

func (m SyncMode) String() string {
	if int(m) < len(syncNames) && m >= 0 {
		return syncNames[m]
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// ParseSync reads a sync URL parameter: auto, always or never.
func ParseSync(s string) (SyncMode, error) {
	for i, n := range syncNames {
		if s == n {
			return SyncMode(i), nil
		}
	}
	return 0, fmt.Errorf("fileblob: sync=%q: want auto, always or never", s)
}

// syncs counts fsyncs, for tests.
var syncs atomic.Int64

// Options configure a Store. The zero value is the default.
type Options struct {
	// Sync says which puts are fsynced (default SyncAuto).
	Sync SyncMode
}

// Store is a directory-backed blob.Store. It is safe for concurrent use, also
// by several processes sharing the directory.
type Store struct {
	root string
	opts Options
	dirs sync.Map // directories known to exist
}

var _ blob.Store = (*Store)(nil)

// Open returns a store rooted at dir with the default options.
func Open(dir string) (*Store, error) { return OpenOptions(dir, Options{}) }

// OpenOptions returns a store rooted at dir, creating it if needed. A
// relative dir is made absolute, so the store's URL works from any working
// directory.
func OpenOptions(dir string, opts Options) (*Store, error) {
	if opts.Sync < SyncAuto || opts.Sync > SyncNever {
		return nil, fmt.Errorf("fileblob: bad sync mode %d", opts.Sync)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fileblob: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("fileblob: create root: %w", err)
	}
	return &Store{root: abs, opts: opts}, nil
}

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

// URL implements blob.Store.
func (s *Store) URL() string {
	u := url.URL{Scheme: "file", Path: s.root}
	if s.opts.Sync != SyncAuto {
		u.RawQuery = "sync=" + s.opts.Sync.String()
	}
	return u.String()
}

// Close implements blob.Store; it does nothing.
func (s *Store) Close() error { return nil }

// createTemp creates a temporary file in dir, creating dir as needed. A
// concurrent Delete may remove an emptied directory between the mkdir and
// the create; it tries again a few times.
func (s *Store) createTemp(dir string) (f *os.File, err error) {
	for range 5 {
		if err = s.mkdir(dir); err != nil {
			continue
		}
		if f, err = os.CreateTemp(dir, blob.TempPrefix+"*"); err == nil {
			return f, nil
		}
		s.forget(dir)
	}
	return nil, err
}

func (s *Store) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts blob.PutOptions) error {
	if err := blob.ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fileblob: put %q: %w", key, err)
	}
	dst := s.path(key)
	dir := filepath.Dir(dst)
	sync := s.opts.Sync == SyncAlways || (s.opts.Sync == SyncAuto && !opts.Ephemeral)
	nf, err := s.create(dir)
	if err != nil {
		return fmt.Errorf("fileblob: put %q: %w", key, err)
	}
	defer nf.discard()
	if err := copyTo(ctx, nf.f, r, sync); err != nil {
		return fmt.Errorf("fileblob: put %q: %w", key, err)
	}
	if opts.IfNotExist {
		err = nf.link(dst)
		if errors.Is(err, fs.ErrExist) {
			if isDirErr(dst) {
				return fmt.Errorf("fileblob: put %q: a key prefix of another object: %w", key, err)
			}
			return fmt.Errorf("fileblob: put %q: %w", key, blob.ErrExists)
		}
	} else {
		err = nf.replace(dir, dst)
	}
	if err != nil {
		if errors.Is(err, fs.ErrExist) || isDirErr(dst) {
			return fmt.Errorf("fileblob: put %q: a key prefix of another object: %w", key, err)
		}
		return fmt.Errorf("fileblob: put %q: %w", key, err)
	}
	return nil
}

// newFile is a put's file before it has its name: an unnamed inode
// (O_TMPFILE) where the filesystem allows, so that a writer killed while
// it writes leaves nothing behind; else a named temporary file (which
// SweepTemp removes once it is stale).
type newFile struct {
	f   *os.File
	tmp string // the temporary name; "" for an unnamed inode
	s   *Store
}

func (s *Store) create(dir string) (*newFile, error) {
	if procFD {
		// In the staging directory, which no Delete removes: the file is
		// linked into its own directory once written.
		f, ok, err := s.openUnnamed(filepath.Join(s.root, stagingDir))
		if ok {
			if err != nil {
				return nil, err
			}
			return &newFile{f: f, s: s}, nil
		}
	}
	f, err := s.createTemp(dir)
	if err != nil {
		return nil, err
	}
	return &newFile{f: f, tmp: f.Name(), s: s}, nil
}

// link gives the file the name dst, failing with fs.ErrExist when dst
// exists; the file stays open (it may be linked under more names). An
// unnamed file does not keep its directory from being removed (a Delete
// removes directories it empties): the directory is made again.
func (nf *newFile) link(dst string) error {
	if nf.tmp != "" {
		return os.Link(nf.tmp, dst)
	}
	for try := 0; ; try++ {
		ok, err := linkUnnamed(nf.f, dst)
		if !ok {
			return errors.New("cannot name an unnamed file (no /proc/self/fd)")
		}
		if err == nil || !errors.Is(err, fs.ErrNotExist) || try == 100 {
			return err
		}
		dir := filepath.Dir(dst)
		nf.s.forget(dir)
		if err := nf.s.mkdir(dir); err != nil {
			return err
		}
	}
}

// replace gives the file the name dst, replacing what is there
// atomically: a rename of a second name (which exists only for that
// moment), so that the file can be put under more keys.
func (nf *newFile) replace(dir, dst string) error {
	for try := 0; ; try++ {
		t2 := filepath.Join(dir, blob.TempPrefix+strconv.FormatUint(rand.Uint64(), 36))
		if err := nf.link(t2); err != nil {
			return err
		}
		err := os.Rename(t2, dst)
		if err == nil {
			return nil
		}
		os.Remove(t2)
		if !errors.Is(err, fs.ErrNotExist) || try == 100 {
			return err
		}
		// The directory went between the link and the rename: again.
	}
}

// discard closes the file and removes its temporary name, if it has one.
func (nf *newFile) discard() {
	nf.f.Close()
	if nf.tmp != "" {
		os.Remove(nf.tmp)
	}
}

// stagingDir holds a store's unnamed files while they are written (it is
// hidden from List by its name, and no Delete removes it).
const stagingDir = blob.TempPrefix + "staging"

// procFD says whether /proc/self/fd names open files, which linking an
// unnamed inode needs.
var procFD = func() bool {
	_, err := os.Stat("/proc/self/fd")
	return err == nil
}()

// copyTo writes r to f, fsyncing it when sync is set.
func copyTo(ctx context.Context, f *os.File, r io.Reader, sync bool) error {
	if _, err := io.Copy(&writebackWriter{f: f}, ctxReader{ctx, r}); err != nil {
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			return err
		}
		syncs.Add(1)
	}
	return nil
}

// mkdir makes sure dir exists, remembering the directories it made or saw
// so that a put into a known directory costs no system call for it.
//
// A Delete removes the directories it empties, racing with MkdirAll (a
// parent removed after it was made, or made by another between a check
// and a mkdir): such a race is tried again.
func (s *Store) mkdir(dir string) error {
	if _, ok := s.dirs.Load(dir); ok {
		return nil
	}
	var err error
	for range 8 {
		if err = os.MkdirAll(dir, 0o755); err == nil {
			s.dirs.Store(dir, struct{}{})
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return err
}

// forget drops dir from the known directories (a Delete may remove it).
func (s *Store) forget(dir string) { s.dirs.Delete(dir) }

func isDirErr(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// writebackChunk is how much a put writes before it starts the writeback of
// what it wrote: large puts then overlap writing with flushing.
const writebackChunk = 8 << 20

type writebackWriter struct {
	f       *os.File
	off     int64 // bytes written
	flushed int64 // bytes handed to writeback
}

func (w *writebackWriter) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		n := min(len(p), int(writebackChunk-(w.off-w.flushed)))
		m, err := w.f.Write(p[:n])
		total += m
		w.off += int64(m)
		if err != nil {
			return total, err
		}
		p = p[n:]
		if w.off-w.flushed >= writebackChunk {
			startWriteback(w.f, w.flushed, w.off-w.flushed)
			w.flushed = w.off
		}
	}
	return total, nil
}

// ctxReader stops a copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// WriteTo lets io.Copy use the source's WriteTo (for example bytes.Reader)
// while still checking the context once.
func (c ctxReader) WriteTo(w io.Writer) (int64, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if wt, ok := c.r.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{c})
}

type file struct {
	*os.File
	size int64
}

func (f file) Size() int64 { return f.size }

// Get implements blob.Store. The returned reader has a Size() int64 method.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := blob.ValidateKey(key); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		if notExist(err) {
			return nil, fmt.Errorf("fileblob: get %q: %w", key, blob.ErrNotFound)
		}
		return nil, fmt.Errorf("fileblob: get %q: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fileblob: get %q: %w", key, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("fileblob: get %q: %w", key, blob.ErrNotFound)
	}
	return file{f, fi.Size()}, nil
}

// notExist reports whether err means the key names no object, including
// ENOTDIR ("a/b" where "a" is an object).
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Range implements blob.Store with a ranged read of the file.
func (s *Store) Range(ctx context.Context, key string, off, n int64) (blob.RangeReader, error) {
	if err := blob.CheckRange(key, off); err != nil {
		return nil, err
	}
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	f := rc.(file)
	end := f.size
	if n >= 0 && off+n < end {
		end = off + n
	}
	return rangeFile{io.NewSectionReader(f.File, min(off, f.size), max(end-off, 0)), f}, nil
}

type rangeFile struct {
	*io.SectionReader
	f file
}

func (r rangeFile) ObjectSize() int64 { return r.f.size }
func (r rangeFile) Close() error      { return r.f.Close() }

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, key string) (blob.Attrs, error) {
	if err := blob.ValidateKey(key); err != nil {
		return blob.Attrs{}, err
	}
	fi, err := os.Stat(s.path(key))
	if err != nil || fi.IsDir() {
		if err == nil || notExist(err) {
			return blob.Attrs{}, fmt.Errorf("fileblob: stat %q: %w", key, blob.ErrNotFound)
		}
		return blob.Attrs{}, fmt.Errorf("fileblob: stat %q: %w", key, err)
	}
	return blob.Attrs{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List implements blob.Store.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[blob.Attrs, error] {
	return func(yield func(blob.Attrs, error) bool) {
		if err := blob.ValidatePrefix(prefix); err != nil {
			yield(blob.Attrs{}, err)
			return
		}
		// Walk the deepest directory that contains every match.
		base := prefix
		if i := strings.LastIndexByte(base, '/'); i >= 0 {
			base = base[:i]
		} else {
			base = ""
		}
		start := filepath.Join(s.root, filepath.FromSlash(base))
		var out []blob.Attrs
		err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // vanished, or prefix names nothing
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			name := d.Name()
			if strings.HasPrefix(name, blob.TempPrefix) {
				if d.IsDir() {
					return fs.SkipDir // the staging directory
				}
				return nil
			}
			rel, _ := filepath.Rel(s.root, p)
			key := filepath.ToSlash(rel)
			if d.IsDir() {
				if p == start || strings.HasPrefix(key+"/", prefix) || strings.HasPrefix(prefix, key+"/") {
					return nil
				}
				return fs.SkipDir
			}
			if !strings.HasPrefix(key, prefix) {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			out = append(out, blob.Attrs{Key: key, Size: info.Size(), ModTime: info.ModTime()})
			return nil
		})
		if err != nil {
			yield(blob.Attrs{}, fmt.Errorf("fileblob: list %q: %w", prefix, err))
			return
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
		for _, a := range out {
			if !yield(a, nil) {
				return
			}
		}
	}
}

// Delete implements blob.Store. Directories left empty are removed, up to the root.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blob.ValidateKey(key); err != nil {
		return err
	}
	p := s.path(key)
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return nil // a prefix, not an object
	}
	if err := os.Remove(p); err != nil && !notExist(err) {
		return fmt.Errorf("fileblob: delete %q: %w", key, err)
	}
	for d := filepath.Dir(p); d != s.root && strings.HasPrefix(d, s.root); d = filepath.Dir(d) {
		s.forget(d)
		if os.Remove(d) != nil { // not empty (or gone): stop
			break
		}
	}
	return nil
}

var _ blob.SharedPutter = (*Store)(nil)

// PutShared implements blob.SharedPutter: the bytes are written once, to
// one file, linked under every key (with PutOptions.IfNotExist each link
// fails alone when its key is taken; without it, each key is replaced by
// a rename of its own link). Keys must be in one directory to share the
// file; others get a put of their own.
func (s *Store) PutShared(ctx context.Context, keys []string, data []byte, opts blob.PutOptions) []error {
	errs := make([]error, len(keys))
	if len(keys) == 0 {
		return errs
	}
	for i, k := range keys {
		errs[i] = blob.ValidateKey(k)
	}
	dir := filepath.Dir(s.path(keys[0]))
	var shared []int
	for i, k := range keys {
		if errs[i] != nil {
			continue
		}
		if filepath.Dir(s.path(k)) != dir || len(keys) == 1 {
			errs[i] = blob.PutBytes(ctx, s, k, data, opts)
			continue
		}
		shared = append(shared, i)
	}
	if len(shared) == 0 {
		return errs
	}
	fail := func(err error) []error {
		for _, i := range shared {
			errs[i] = fmt.Errorf("fileblob: put %q: %w", keys[i], err)
		}
		return errs
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	// One file, written (and synced) once, linked under every key.
	nf, err := s.create(dir)
	if err != nil {
		return fail(err)
	}
	defer nf.discard()
	sync := s.opts.Sync == SyncAlways || (s.opts.Sync == SyncAuto && !opts.Ephemeral)
	if err := copyTo(ctx, nf.f, bytes.NewReader(data), sync); err != nil {
		return fail(err)
	}
	for _, i := range shared {
		dst := s.path(keys[i])
		if opts.IfNotExist {
			err = nf.link(dst)
		} else {
			err = nf.replace(dir, dst)
		}
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrExist) && opts.IfNotExist:
			errs[i] = fmt.Errorf("fileblob: put %q: %w", keys[i], blob.ErrExists)
		default:
			errs[i] = fmt.Errorf("fileblob: put %q: %w", keys[i], err)
		}
	}
	return errs
}

var _ blob.TempSweeper = (*Store)(nil)

// SweepTemp implements blob.TempSweeper: it removes the temporary files
// (blob.TempPrefix) older than age under the root. Puts write unnamed
// files where the filesystem allows (Linux's O_TMPFILE), which a killed
// writer never leaves behind; elsewhere a killed writer leaves its
// temporary file, and this removes it.
func (s *Store) SweepTemp(ctx context.Context, age time.Duration) (int, error) {
	cutoff := time.Now().Add(-age)
	removed := 0
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), blob.TempPrefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.ModTime().After(cutoff) {
			return nil
		}
		if os.Remove(p) == nil {
			removed++
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("fileblob: sweep temporaries: %w", err)
	}
	return removed, nil
}

var _ blob.PrefixDeleter = (*Store)(nil)

// DeletePrefix implements blob.PrefixDeleter: a prefix that names a
// directory ("jobs/<job>/") goes with its subdirectories removed in
// parallel; any other is listed and deleted.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if err := blob.ValidatePrefix(prefix); err != nil {
		return 0, err
	}
	dir := filepath.Join(s.root, filepath.FromSlash(strings.TrimSuffix(prefix, "/")))
	if prefix == "" || !strings.HasSuffix(prefix, "/") || !isDirErr(dir) {
		return deleteListed(ctx, s, prefix)
	}
	var n atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return removeTree(gctx, g, dir, &n) })
	err := g.Wait()
	if err == nil {
		err = removeDirs(dir)
	}
	if err != nil {
		err = fmt.Errorf("fileblob: delete %q: %w", prefix, err)
	}
	s.dirs.Range(func(k, _ any) bool {
		if d := k.(string); d == dir || strings.HasPrefix(d, dir+string(filepath.Separator)) {
			s.dirs.Delete(k)
		}
		return true
	})
	if err == nil {
		// The directory itself, and parents left empty, as Delete does.
		for d := dir; d != s.root && strings.HasPrefix(d, s.root); d = filepath.Dir(d) {
			s.forget(d)
			if os.Remove(d) != nil {
				break
			}
		}
	}
	return int(n.Load()), err
}

// deleteListed deletes what a listing of prefix finds, in parallel.
func deleteListed(ctx context.Context, s *Store, prefix string) (int, error) {
	keys, err := blob.Keys(ctx, s, prefix)
	if err != nil {
		return 0, err
	}
	return len(keys), blob.DeleteKeys(ctx, s, keys)
}

// removeTree unlinks every file under dir, by name relative to each
// directory (no path lookups: a directory of a million statuses goes at
// about rm -rf's speed), its subdirectories in parallel, and counts the
// objects among them.
func removeTree(ctx context.Context, g *errgroup.Group, dir string, n *atomic.Int64) error {
	f, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	defer f.Close()
	for {
		ents, err := f.ReadDir(4096)
		for _, e := range ents {
			if e.IsDir() {
				sub := filepath.Join(dir, e.Name())
				g.Go(func() error { return removeTree(ctx, g, sub, n) })
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if rerr := unlinkAt(f, e.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				return rerr
			}
			if !strings.HasPrefix(e.Name(), blob.TempPrefix) {
				n.Add(1)
			}
		}
		if errors.Is(err, io.EOF) || len(ents) == 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// removeDirs removes the (now empty) directories of a tree.
func removeDirs(dir string) error {
	err := os.RemoveAll(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
