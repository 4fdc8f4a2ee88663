package mapreduce_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/mapreduce"
)

func ExampleRun() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "wordcount")
	defer os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "in"), 0o755)
	os.WriteFile(filepath.Join(dir, "in", "a.txt"), []byte("the cat\nthe hat\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "in", "b.txt"), []byte("a cat in the hat"), 0o644)

	ex, err := wren.NewExecutor(ctx, wren.Options{Store: filepath.Join(dir, "store"), Backend: wren.InProcess(2), Progress: wren.ProgressOff})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Close()
	// tokenize and sum are registered at package level (see the tests).
	res, err := mapreduce.Run(ctx, ex, mapreduce.Job[string, string, int]{
		Input:   mapreduce.Lines(filepath.Join(dir, "in")),
		Map:     tokenize,
		Combine: sum, Reduce: sum,
		Partitions: 2,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	counts, _ := res.Collect(ctx)
	for _, w := range slices.Sorted(func(yield func(string) bool) {
		for w := range counts {
			if !yield(w) {
				return
			}
		}
	}) {
		fmt.Println(w, counts[w])
	}
	// Output:
	// a 1
	// cat 2
	// hat 2
	// in 1
	// the 3
}

func ExampleSort() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "sort")
	defer os.RemoveAll(dir)
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: filepath.Join(dir, "store"), Backend: wren.InProcess(2), Progress: wren.ProgressOff})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Close()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	st, _ := wren.OpenStore(ctx, in)
	if _, err := mapreduce.GenerateRecords(ctx, st, "", mapreduce.GenOptions{Records: 10000, Files: 2, Seed: 1}); err != nil {
		fmt.Println(err)
		return
	}
	res, err := mapreduce.Sort(ctx, ex, mapreduce.SortJob{Input: in, Output: out, Partitions: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := mapreduce.Validate(ctx, ex, out, in)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Records, "records in", len(res.Partitions), "partitions; valid:", rep.OK())
	// Output: 10000 records in 4 partitions; valid: true
}
