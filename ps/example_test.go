package ps_test

import (
	"context"
	"fmt"

	"github.com/wrenml/wren/ps"
)

// With no addresses, Open starts a local redis-server and Close stops it.
func Example() {
	ctx := context.Background()
	srv, err := ps.Open(ctx, ps.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	m, _ := srv.Create(ctx, "example", 8, ps.Zeros)
	m.Push(ctx, 2, []float32{1, 2, 3}, -0.5)            // w[2:5] += -0.5 * deltas
	m.PushSparse(ctx, []int{7, 7}, []float32{1, 1}, 10) // w[7] += 20
	w, _ := m.Pull(ctx, 0, 8)
	v, _ := m.Version(ctx)
	fmt.Println(w, v)
	// Output: [0 0 -0.5 -1 -1.5 0 0 20] 2
}
