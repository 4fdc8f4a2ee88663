// Command noinit is a wren program whose main forgets to call wren.Init():
// the hardening test runs it to check that the driver fails at once with the
// fix, instead of each worker starting workers of its own.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/wrenml/wren"
)

var square = wren.Register("noinit.square", func(ctx context.Context, x int) (int, error) { return x * x, nil })

func main() {
	// wren.Init() is missing here.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The store comes from the environment, which the worker processes
	// inherit, so that they reach NewExecutor as the driver did.
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: os.Getenv("NOINIT_STORE"), Parallelism: 2, Progress: wren.ProgressOff})
	if err != nil {
		fmt.Println("driver:", err)
		os.Exit(1)
	}
	defer ex.Close()
	job, err := square.Map(ctx, ex, []int{1, 2, 3})
	if err != nil {
		fmt.Println("driver:", err)
		os.Exit(1)
	}
	out, err := job.Results(ctx)
	if err != nil {
		fmt.Println("driver:", err)
		os.Exit(1)
	}
	fmt.Println("driver: results", out)
}
