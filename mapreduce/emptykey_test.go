package mapreduce_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/mapreduce"
)

// firstField emits (the line's first CSV field, 1): an empty first column
// and an empty line both give the key "".
var firstField = mapreduce.RegisterMap("test.first-field", func(ctx context.Context, line string, emit func(string, int)) error {
	k, _, _ := strings.Cut(line, ",")
	emit(k, 1)
	return nil
})

// TestEmptyKey: the empty key is a key like any other, whatever its place:
// alone in its partition, first of many, in the last partition, folded by
// a combiner or not (it used to be reduced into the next key, or dropped
// when it was its partition's only key).
func TestEmptyKey(t *testing.T) {
	ctx := testCtx(t)
	ex := executor(t, wren.Options{Backend: wren.InProcess(2)})
	texts := map[string]string{
		"issue":      ",x\na,y\na,z\nb,w\n",
		"only empty": ",x\n,y\n\n",
		"many":       ",x\n\nb,1\nc,2\n,3\na,4\nzz,5\n\n,6\n",
	}
	// A hash-partitioned job whose last partition holds "".
	last := 0
	for n := 2; n < 64 && last == 0; n++ {
		if xxhash.Sum64String("")%uint64(n) == uint64(n-1) {
			last = n
		}
	}
	if last == 0 {
		t.Fatal("no partition count puts \"\" last")
	}
	type shape struct {
		partitions int
		splitters  []string
	}
	shapes := map[string]shape{
		"one partition":               {1, nil},
		"alone in its range":          {2, []string{"a"}},
		"first of its range":          {2, []string{"b"}},
		fmt.Sprintf("hash, %d", last): {last, nil},
		"hash, 3":                     {3, nil},
	}
	for tname, text := range texts {
		want := map[string]int{}
		for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
			k, _, _ := strings.Cut(line, ",")
			want[k]++
		}
		dir := t.TempDir()
		st, err := wren.OpenStore(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := blob.PutBytes(ctx, st, "in.csv", []byte(text), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		for sname, sh := range shapes {
			for _, combine := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/combine=%v", tname, sname, combine), func(t *testing.T) {
					job := mapreduce.Job[string, string, int]{Input: mapreduce.Lines(st.URL()), Map: firstField, Reduce: sum,
						Partitions: sh.partitions, Splitters: sh.splitters}
					if combine {
						job.Combine = sum
					}
					res, err := mapreduce.Run(ctx, ex, job)
					if err != nil {
						t.Fatal(err)
					}
					got, err := res.Collect(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if !maps.Equal(got, want) || res.Records != int64(len(want)) {
						t.Fatalf("counts %v (%d records), want %v", got, res.Records, want)
					}
				})
			}
		}
	}
}
