package wren_test

import (
	"context"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/wrenml/wren"
)

// BenchmarkMap measures the per-call cost of the map primitive with a
// trivial function, against a goroutine pool doing the same calls.
func BenchmarkMap(b *testing.B) {
	in := make([]int, 200)
	for i := range in {
		in[i] = i
	}
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		opts wren.Options
	}{
		{"local", wren.Options{}},
		{"local-chunk10", wren.Options{ChunkSize: 10}},
		{"inprocess", wren.Options{Backend: wren.InProcess(2)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bc.opts.Store = b.TempDir()
			bc.opts.Progress = wren.ProgressOff
			ex, err := wren.NewExecutor(ctx, bc.opts)
			if err != nil {
				b.Fatal(err)
			}
			defer ex.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				job, err := Square.Map(ctx, ex, in)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := job.Results(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(in))/b.Elapsed().Seconds(), "calls/s")
		})
	}
	b.Run("errgroup-pool", func(b *testing.B) {
		for b.Loop() {
			out := make([]int, len(in))
			var g errgroup.Group
			g.SetLimit(2)
			for i, x := range in {
				g.Go(func() error { out[i] = x * x; return nil })
			}
			g.Wait()
		}
		b.ReportMetric(float64(b.N*len(in))/b.Elapsed().Seconds(), "calls/s")
	})
}
