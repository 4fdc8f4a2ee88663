package dataset_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/blob/memblob"
	"github.com/wrenml/wren/dataset"
)

// TestRoundTrip: shards written are listed (complete ones only, in
// order, with the classes) and read back as written.
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := memblob.New()
	for i := range 3 {
		n := 2 + i
		x := make([]float32, n*4)
		y := make([]int32, n)
		for k := range x {
			x[k] = float32(i*100 + k)
		}
		for k := range y {
			y[k] = int32(k % 2)
		}
		if err := dataset.WriteShard(ctx, st, "feats", i, x, 4, y, []string{"a.jpg"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A shard whose .json is missing (its writer died) is not complete.
	blob.PutBytes(ctx, st, "feats/shard-00009.npy", []byte("partial"), blob.PutOptions{})
	if err := dataset.WriteClasses(ctx, st, "feats/", []string{"cat", "dog"}); err != nil {
		t.Fatal(err)
	}
	l, err := dataset.List(ctx, st, "feats")
	if err != nil {
		t.Fatal(err)
	}
	if l.Format != dataset.Dense || len(l.Shards) != 3 || l.N != 9 || l.Dim != 4 || strings.Join(l.Classes, ",") != "cat,dog" || l.Shards[2].Base != "feats/shard-00002" {
		t.Fatalf("listing %+v", l)
	}
	x, y, err := dataset.ReadShard(ctx, st, l.Shards[1].Base, 4)
	if err != nil || len(y) != 3 || len(x) != 12 || x[5] != 105 || y[1] != 1 {
		t.Fatalf("shard 1: %v %v %v", x, y, err)
	}
	if b, _ := blob.ReadAll(ctx, st, "feats/shard-00000.files.txt"); string(b) != "a.jpg\n" {
		t.Fatalf("files %q", b)
	}
}

// TestBadShards: every malformed shard is a clear error naming it.
func TestBadShards(t *testing.T) {
	ctx := context.Background()
	st := memblob.New()
	if _, err := dataset.List(ctx, st, "none"); !errors.Is(err, dataset.ErrEmpty) {
		t.Fatalf("empty prefix: %v", err)
	}
	nan := []float32{1, float32(math.NaN()), 3, 4}
	if err := dataset.WriteShard(ctx, st, "nan", 0, nan, 2, []int32{0, 1}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := dataset.ReadShard(ctx, st, "nan/shard-00000", 2); !errors.Is(err, dataset.ErrBadData) || !strings.Contains(err.Error(), "feature 1") {
		t.Fatalf("NaN: %v", err)
	}
	if _, _, err := dataset.ReadShard(ctx, st, "nan/shard-00000", 3); !errors.Is(err, dataset.ErrMismatch) {
		t.Fatalf("another width: %v", err)
	}
	if err := dataset.WriteShard(ctx, st, "w", 0, []float32{1, 2}, 2, []int32{0}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := dataset.WriteShard(ctx, st, "w", 1, []float32{1, 2, 3}, 3, []int32{0}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.List(ctx, st, "w"); !errors.Is(err, dataset.ErrMismatch) {
		t.Fatalf("mixed widths: %v", err)
	}
	if err := dataset.WriteShard(ctx, st, "x", 0, []float32{1, 2, 3}, 2, []int32{0}, nil, nil); err == nil {
		t.Fatal("3 values for a row of 2 written")
	}
	blob.PutBytes(ctx, st, "lab/shard-00000.npy", mustNPY(t, ctx), blob.PutOptions{})
	blob.PutBytes(ctx, st, "lab/shard-00000.labels.npy", []byte("not npy"), blob.PutOptions{})
	if _, _, err := dataset.ReadShard(ctx, st, "lab/shard-00000", 0); !errors.Is(err, dataset.ErrBadData) || !strings.Contains(err.Error(), "labels") {
		t.Fatalf("bad labels: %v", err)
	}
}

func mustNPY(t *testing.T, ctx context.Context) []byte {
	st := memblob.New()
	if err := dataset.WriteShard(ctx, st, "", 0, []float32{1, 2}, 2, []int32{0}, nil, nil); err != nil {
		t.Fatal(err)
	}
	b, err := blob.ReadAll(ctx, st, "shard-00000.npy")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLibSVM: libsvm lines are written one-based, zeros left out, and a
// prefix of them is listed as libsvm shards.
func TestLibSVM(t *testing.T) {
	ctx := context.Background()
	st := memblob.New()
	var text []byte
	text = dataset.AppendLibSVM(text, 1, []int32{0, 4, 9}, []float64{0.5, 0, -2})
	text = dataset.AppendLibSVM(text, -1, nil, nil)
	if string(text) != "1 1:0.5 10:-2\n-1\n" {
		t.Fatalf("lines %q", text)
	}
	if err := dataset.WriteLibSVM(ctx, st, "sparse/", 3, text); err != nil {
		t.Fatal(err)
	}
	blob.PutBytes(ctx, st, "sparse/extra.svmlight", text, blob.PutOptions{})
	l, err := dataset.List(ctx, st, "sparse")
	if err != nil || l.Format != dataset.LibSVM || len(l.Shards) != 2 || l.Shards[1].Base != "sparse/shard-00003.libsvm" {
		t.Fatalf("listing %+v, %v", l, err)
	}
}

// TestStream: shards come in order whatever the read-ahead; a consumer
// that stops early leaves no read running; a bad shard stops the stream
// with its error; libsvm listings and a cancelled context are errors.
func TestStream(t *testing.T) {
	ctx := context.Background()
	st := memblob.New()
	const shards, dim = 7, 3
	for i := range shards {
		n := 1 + i%3
		x := make([]float32, n*dim)
		y := make([]int32, n)
		for k := range x {
			x[k] = float32(i)
		}
		if err := dataset.WriteShard(ctx, st, "d", i, x, dim, y, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	l, err := dataset.List(ctx, st, "d")
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	for _, ahead := range []int{-1, 0, 1, 2, shards, 100} {
		i := 0
		for r, err := range l.Stream(ctx, st, ahead) {
			if err != nil {
				t.Fatalf("ahead %d: %v", ahead, err)
			}
			if r.Shard != l.Shards[i] || len(r.Y) != r.Shard.N || len(r.X) != r.Shard.N*dim || r.X[0] != float32(i) {
				t.Fatalf("ahead %d: shard %d is %+v", ahead, i, r.Shard)
			}
			i++
		}
		if i != shards {
			t.Fatalf("ahead %d: %d shards", ahead, i)
		}
		for range l.Stream(ctx, st, ahead) {
			break
		}
	}
	waitGoroutines(t, before)

	// A shard whose labels were lost after listing.
	st.Delete(ctx, l.Shards[3].Base+".labels.npy")
	i := 0
	var last error
	for _, err := range l.Stream(ctx, st, 2) {
		if err != nil {
			last = err
			break
		}
		i++
	}
	if i != 3 || !errors.Is(last, blob.ErrNotFound) {
		t.Fatalf("%d shards, then %v", i, last)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	n := 0
	for _, err := range l.Stream(cctx, st, 2) {
		if n++; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled: %v", err)
		}
	}
	if n != 1 {
		t.Fatalf("a cancelled stream yielded %d times, want its error once", n)
	}
	lib := &dataset.Listing{Format: dataset.LibSVM, Shards: []dataset.Shard{{Base: "x.svm"}}}
	for _, err := range lib.Stream(ctx, st, 2) {
		if !errors.Is(err, dataset.ErrMismatch) {
			t.Fatalf("libsvm: %v", err)
		}
	}
	waitGoroutines(t, before)
}

// waitGoroutines waits for the goroutines to fall back to n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before", runtime.NumGoroutine(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
