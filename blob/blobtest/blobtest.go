// Package blobtest is the conformance suite every blob.Store driver passes.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/wrenml/wren/blob"
)

// Options tune the suite for a driver.
type Options struct {
	// LargeSize is the size of the object used to test large puts (multipart
	// uploads for S3). Zero means 9 MiB.
	LargeSize int
	// Reopen, when true, checks that blob.Open(store.URL()) reaches the same
	// objects.
	Reopen bool
}

// Run runs the suite against a fresh store from newStore for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store, opts Options) {
	if opts.LargeSize == 0 {
		opts.LargeSize = 9 << 20
	}
	ctx := context.Background()
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"PutGet", func(t *testing.T, s blob.Store) {
			mustPut(t, s, "a/b/c.txt", []byte("hello"))
			expect(t, s, "a/b/c.txt", []byte("hello"))
			mustPut(t, s, "a/b/c.txt", []byte("replaced"))
			expect(t, s, "a/b/c.txt", []byte("replaced"))
			mustPut(t, s, "empty", nil)
			expect(t, s, "empty", []byte{})
			a, err := s.Stat(ctx, "a/b/c.txt")
			if err != nil || a.Size != 8 || a.Key != "a/b/c.txt" {
				t.Fatalf("Stat = %+v, %v; want size 8", a, err)
			}
		}},
		{"NotFound", func(t *testing.T, s blob.Store) {
			if _, err := s.Get(ctx, "missing/x"); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("Get missing: %v, want ErrNotFound", err)
			}
			if _, err := s.Stat(ctx, "missing"); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("Stat missing: %v, want ErrNotFound", err)
			}
			mustPut(t, s, "dir/obj", []byte("x"))
			if _, err := s.Stat(ctx, "dir"); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("Stat of a prefix: %v, want ErrNotFound", err)
			}
			if _, err := s.Get(ctx, "dir/obj/deeper"); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("Get below an object: %v, want ErrNotFound", err)
			}
		}},
		{"IfNotExist", func(t *testing.T, s blob.Store) {
			if err := blob.PutBytes(ctx, s, "st/1", []byte("first"), blob.PutOptions{IfNotExist: true}); err != nil {
				t.Fatal(err)
			}
			err := blob.PutBytes(ctx, s, "st/1", []byte("second"), blob.PutOptions{IfNotExist: true})
			if !errors.Is(err, blob.ErrExists) {
				t.Fatalf("second conditional put: %v, want ErrExists", err)
			}
			expect(t, s, "st/1", []byte("first"))
		}},
		{"IfNotExistRace", func(t *testing.T, s blob.Store) {
			var wins atomic.Int32
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					err := blob.PutBytes(ctx, s, "race/key", []byte(fmt.Sprint(i)), blob.PutOptions{IfNotExist: true})
					switch {
					case err == nil:
						wins.Add(1)
					case !errors.Is(err, blob.ErrExists):
						t.Errorf("racer %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("%d conditional puts won, want exactly 1", wins.Load())
			}
		}},
		{"List", func(t *testing.T, s blob.Store) {
			keys := []string{"j/1/status/2", "j/1/status/10", "j/1/out/1", "j/10/x", "j/1-b", "k"}
			for _, k := range keys {
				mustPut(t, s, k, []byte(k))
			}
			cases := map[string][]string{
				"":             {"j/1-b", "j/1/out/1", "j/1/status/10", "j/1/status/2", "j/10/x", "k"},
				"j/1/":         {"j/1/out/1", "j/1/status/10", "j/1/status/2"},
				"j/1":          {"j/1-b", "j/1/out/1", "j/1/status/10", "j/1/status/2", "j/10/x"},
				"j/1/status/1": {"j/1/status/10"},
				"nothing/":     nil,
				"k":            {"k"},
			}
			for p, want := range cases {
				got, err := blob.Keys(ctx, s, p)
				if err != nil {
					t.Fatalf("List(%q): %v", p, err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("List(%q) = %v, want %v", p, got, want)
				}
			}
			for a, err := range s.List(ctx, "k") {
				if err != nil || a.Size != 1 {
					t.Errorf("List attrs = %+v, %v; want size 1", a, err)
				}
			}
		}},
		{"ListEarlyStop", func(t *testing.T, s blob.Store) {
			for i := range 5 {
				mustPut(t, s, fmt.Sprintf("p/%d", i), []byte("x"))
			}
			n := 0
			for range s.List(ctx, "p/") {
				n++
				if n == 2 {
					break
				}
			}
			if n != 2 {
				t.Fatalf("break after 2 gave %d", n)
			}
		}},
		{"Delete", func(t *testing.T, s blob.Store) {
			mustPut(t, s, "d/x/1", []byte("1"))
			mustPut(t, s, "d/y", []byte("2"))
			if err := s.Delete(ctx, "d/x/1"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, "d/x/1"); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("after delete: %v", err)
			}
			if err := s.Delete(ctx, "d/x/1"); err != nil {
				t.Fatalf("deleting a missing key: %v", err)
			}
			expect(t, s, "d/y", []byte("2"))
			mustPut(t, s, "d/x/2", []byte("again")) // the emptied prefix is usable again
			expect(t, s, "d/x/2", []byte("again"))
			n, err := blob.DeletePrefix(ctx, s, "d/")
			if err != nil || n != 2 {
				t.Fatalf("DeletePrefix = %d, %v; want 2", n, err)
			}
			if got, _ := blob.Keys(ctx, s, ""); len(got) != 0 {
				t.Fatalf("left after DeletePrefix: %v", got)
			}
		}},
		{"InvalidKeys", func(t *testing.T, s blob.Store) {
			bad := []string{"", "../x", "a/../../x", "a/..", "/etc/passwd", "a\x00b", "a//b", "./a", `a\b`, "a/", blob.TempPrefix + "x", string([]byte{0xff, 0xfe})}
			for _, k := range bad {
				if err := blob.PutBytes(ctx, s, k, []byte("x"), blob.PutOptions{}); !errors.Is(err, blob.ErrInvalidKey) {
					t.Errorf("Put(%q): %v, want ErrInvalidKey", k, err)
				}
				if _, err := s.Get(ctx, k); !errors.Is(err, blob.ErrInvalidKey) {
					t.Errorf("Get(%q): %v, want ErrInvalidKey", k, err)
				}
				if _, err := s.Stat(ctx, k); !errors.Is(err, blob.ErrInvalidKey) {
					t.Errorf("Stat(%q): %v, want ErrInvalidKey", k, err)
				}
				if err := s.Delete(ctx, k); !errors.Is(err, blob.ErrInvalidKey) {
					t.Errorf("Delete(%q): %v, want ErrInvalidKey", k, err)
				}
			}
			for _, err := range s.List(ctx, "../") {
				if !errors.Is(err, blob.ErrInvalidKey) {
					t.Errorf("List(../): %v, want ErrInvalidKey", err)
				}
			}
			if got, _ := blob.Keys(ctx, s, ""); len(got) != 0 {
				t.Fatalf("invalid puts left objects: %v", got)
			}
		}},
		{"FailedPutLeavesNothing", func(t *testing.T, s blob.Store) {
			mustPut(t, s, "keep", []byte("old"))
			r := io.MultiReader(bytes.NewReader(make([]byte, 1000)), errReader{})
			if err := s.Put(ctx, "keep", r, blob.PutOptions{}); err == nil {
				t.Fatal("put from a failing reader succeeded")
			}
			if err := s.Put(ctx, "new", io.MultiReader(bytes.NewReader([]byte("part")), errReader{}), blob.PutOptions{}); err == nil {
				t.Fatal("put from a failing reader succeeded")
			}
			expect(t, s, "keep", []byte("old"))
			if got, _ := blob.Keys(ctx, s, ""); fmt.Sprint(got) != "[keep]" {
				t.Fatalf("objects after failed puts: %v", got)
			}
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if err := blob.PutBytes(cctx, s, "cancelled", []byte("x"), blob.PutOptions{}); err == nil {
				t.Fatal("put with a cancelled context succeeded")
			}
			if _, err := s.Stat(ctx, "cancelled"); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("cancelled put left an object: %v", err)
			}
		}},
		{"Large", func(t *testing.T, s blob.Store) {
			data := make([]byte, opts.LargeSize)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			// Unknown size: the driver must stream.
			if err := s.Put(ctx, "big/obj", struct{ io.Reader }{bytes.NewReader(data)}, blob.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			expect(t, s, "big/obj", data)
			if err := blob.PutBytes(ctx, s, "big/obj2", data, blob.PutOptions{IfNotExist: true}); err != nil {
				t.Fatal(err)
			}
			expect(t, s, "big/obj2", data)
		}},
		{"Range", func(t *testing.T, s blob.Store) {
			data := make([]byte, 1000)
			for i := range data {
				data[i] = byte(i * 7)
			}
			mustPut(t, s, "r/obj", data)
			for _, c := range []struct{ off, n, lo, hi int64 }{
				{0, 10, 0, 10},
				{990, 100, 990, 1000}, // cut at the end
				{500, -1, 500, 1000},  // to the end
				{0, -1, 0, 1000},
				{123, 1, 123, 124},
				{1000, 10, 1000, 1000}, // at the end: nothing
				{5000, 1, 1000, 1000},  // past the end: nothing
				{7, 0, 7, 7},
			} {
				r, err := s.Range(ctx, "r/obj", c.off, c.n)
				if err != nil {
					t.Fatalf("Range(%d, %d): %v", c.off, c.n, err)
				}
				got, err := io.ReadAll(r)
				r.Close()
				if err != nil || !bytes.Equal(got, data[c.lo:c.hi]) {
					t.Fatalf("Range(%d, %d) = %d bytes, %v; want bytes [%d, %d)", c.off, c.n, len(got), err, c.lo, c.hi)
				}
				if r.ObjectSize() != 1000 {
					t.Fatalf("Range(%d, %d): ObjectSize %d, want 1000", c.off, c.n, r.ObjectSize())
				}
			}
			b, size, err := blob.ReadRange(ctx, s, "r/obj", 100, 50)
			if err != nil || size != 1000 || !bytes.Equal(b, data[100:150]) {
				t.Fatalf("ReadRange: %d bytes of %d, %v", len(b), size, err)
			}
			mustPut(t, s, "r/empty", nil)
			if b, size, err := blob.ReadRange(ctx, s, "r/empty", 0, 10); err != nil || size != 0 || len(b) != 0 {
				t.Fatalf("range of an empty object: %d bytes of %d, %v", len(b), size, err)
			}
			if _, err := s.Range(ctx, "r/missing", 0, 10); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("Range of a missing object: %v, want ErrNotFound", err)
			}
			if _, err := s.Range(ctx, "r/obj", -1, 10); !errors.Is(err, blob.ErrInvalidRange) {
				t.Fatalf("Range at -1: %v, want ErrInvalidRange", err)
			}
			if _, err := s.Range(ctx, "../r/obj", 0, 10); !errors.Is(err, blob.ErrInvalidKey) {
				t.Fatalf("Range of an escaping key: %v, want ErrInvalidKey", err)
			}
		}},
		{"PutShared", func(t *testing.T, s blob.Store) {
			mustPut(t, s, "sh/b", []byte("taken"))
			keys := []string{"sh/a", "sh/b", "sh/c", "other/d"}
			errs := blob.PutShared(ctx, s, keys, []byte("same"), blob.PutOptions{IfNotExist: true})
			for i, err := range errs {
				if i == 1 {
					if !errors.Is(err, blob.ErrExists) {
						t.Fatalf("PutShared over a taken key: %v, want ErrExists", err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("PutShared %s: %v", keys[i], err)
				}
				expect(t, s, keys[i], []byte("same"))
			}
			expect(t, s, "sh/b", []byte("taken"))
			// Unconditional: replaces, and each key is its own object.
			errs = blob.PutShared(ctx, s, []string{"sh/a", "sh/b"}, []byte("new"), blob.PutOptions{})
			if errs[0] != nil || errs[1] != nil {
				t.Fatalf("PutShared replace: %v", errs)
			}
			expect(t, s, "sh/b", []byte("new"))
			if err := s.Delete(ctx, "sh/a"); err != nil {
				t.Fatal(err)
			}
			expect(t, s, "sh/b", []byte("new"))
			if errs := blob.PutShared(ctx, s, []string{"sh/x", "../escape"}, []byte("x"), blob.PutOptions{}); !errors.Is(errs[1], blob.ErrInvalidKey) {
				t.Fatalf("PutShared with an escaping key: %v", errs)
			}
			expect(t, s, "sh/x", []byte("x"))
		}},
		{"DeleteMany", func(t *testing.T, s blob.Store) {
			// More keys than one batch, nested, beside keys that share the
			// prefix's name but not the prefix.
			var keys []string
			for i := range 2*blob.MaxDeleteBatch + 7 {
				k := fmt.Sprintf("job/status/%06d", i)
				if i%3 == 0 {
					k = fmt.Sprintf("job/in/pack-%06d", i)
				}
				keys = append(keys, k)
			}
			g, gctx := errgroup.WithContext(ctx)
			g.SetLimit(16)
			for _, k := range keys {
				g.Go(func() error { return blob.PutBytes(gctx, s, k, []byte("x"), blob.PutOptions{}) })
			}
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
			mustPut(t, s, "jobx/keep", []byte("1"))
			mustPut(t, s, "job2/keep", []byte("2"))
			// DeleteKeys: missing keys are not an error.
			if err := blob.DeleteKeys(ctx, s, append(keys[:5:5], "job/none", "nothing/here")); err != nil {
				t.Fatal(err)
			}
			n, err := blob.DeletePrefix(ctx, s, "job/")
			if err != nil || n != len(keys)-5 {
				t.Fatalf("DeletePrefix = %d, %v; want %d", n, err, len(keys)-5)
			}
			got, _ := blob.Keys(ctx, s, "")
			if len(got) != 2 || got[0] != "job2/keep" || got[1] != "jobx/keep" {
				t.Fatalf("left after DeletePrefix: %v", got)
			}
			mustPut(t, s, "job/status/000001", []byte("again")) // usable again
			expect(t, s, "job/status/000001", []byte("again"))
			if n, err := blob.DeletePrefix(ctx, s, "nothing/"); err != nil || n != 0 {
				t.Fatalf("DeletePrefix of nothing = %d, %v", n, err)
			}
		}},
		{"Reopen", func(t *testing.T, s blob.Store) {
			if !opts.Reopen {
				t.Skip("driver has no reopenable URL")
			}
			mustPut(t, s, "r/1", []byte("via url"))
			s2, err := blob.Open(ctx, s.URL())
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			expect(t, s2, "r/1", []byte("via url"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			tc.fn(t, s)
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("reader broke") }

func mustPut(t *testing.T, s blob.Store, key string, data []byte) {
	t.Helper()
	if err := blob.PutBytes(context.Background(), s, key, data, blob.PutOptions{}); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func expect(t *testing.T, s blob.Store, key string, want []byte) {
	t.Helper()
	got, err := blob.ReadAll(context.Background(), s, key)
	if err != nil {
		t.Fatalf("ReadAll(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ReadAll(%q) = %d bytes, want %d (content differs)", key, len(got), len(want))
	}
}
