package wren_test

import (
	"context"
	"fmt"
	"os"

	"github.com/wrenml/wren"
)

// Map a registered task over inputs with local worker processes. (Square is
// registered at package level: var Square = wren.Register("test.square", ...).)
func ExampleTask_Map() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "wren-example-")
	defer os.RemoveAll(dir)
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Close()
	job, err := Square.Map(ctx, ex, []int{1, 2, 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	squares, err := job.Results(ctx)
	fmt.Println(squares, err)
	// Output: [1 4 9] <nil>
}

// A failing call reports the worker's error; the others still succeed.
func ExampleJob_Results() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "wren-example-")
	defer os.RemoveAll(dir)
	ex, _ := wren.NewExecutor(ctx, wren.Options{Store: dir, Backend: wren.InProcess(2)})
	defer ex.Close()
	job, _ := FailOnMultipleOf3.Map(ctx, ex, []int{1, 2, 3})
	out, err := job.Results(ctx)
	fmt.Println(out)
	fmt.Println(err != nil)
	// Output:
	// [1 2 0]
	// true
}
