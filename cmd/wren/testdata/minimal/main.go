// Command minimal is the smallest wren program: a map of three calls on
// the default executor (local worker processes, a store in ./.wren).
// `wren bench lambda` reports its size beside the examples'.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/wrenml/wren"
)

var square = wren.Register("minimal.square", func(ctx context.Context, x int) (int, error) {
	return x * x, nil
})

func main() {
	wren.Init()
	ctx := context.Background()
	ex, err := wren.NewExecutor(ctx, wren.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer ex.Close()
	job, err := square.Map(ctx, ex, []int{1, 2, 3})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := job.Results(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(out)
	job.Clean(ctx)
}
