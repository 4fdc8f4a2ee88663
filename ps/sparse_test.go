package ps_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/wrenml/wren/ps"
)

// TestGatherScatterPaths drives each path of the packed scripts against a
// Go reference: blocks given few indices (GETRANGE/SETRANGE per index),
// some (rebuilt around the changed values), many (decoded whole); a push of
// more pairs than one call takes; repeated and unordered indices.
func TestGatherScatterPaths(t *testing.T) {
	for _, shards := range []int{1, 3} {
		t.Run(fmt.Sprint(shards, "shards"), func(t *testing.T) {
			s, _ := open(t, shards, 1024)
			ctx := context.Background()
			const n = 200_000 // the last block is partial
			m, err := s.Create(ctx, "gs", n, ps.Normal(0, 1, 9))
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := m.Pull(ctx, 0, n)
			rng := rand.New(rand.NewPCG(4, 4))
			for _, per := range []int{1, 3, 4, 5, 50, 127, 128, 600, 1024} {
				// per indices in each of 20 random blocks (the last included).
				var idx []int
				var d []float32
				for b := range 20 {
					blk := rng.IntN(n / 1024)
					if b == 0 {
						blk = n / 1024
					}
					bl := min(1024, n-blk*1024)
					for range min(per, bl) {
						idx = append(idx, blk*1024+rng.IntN(bl))
						d = append(d, float32(rng.NormFloat64()))
					}
				}
				rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i]; d[i], d[j] = d[j], d[i] })
				if err := m.PushSparse(ctx, idx, d, 0.5); err != nil {
					t.Fatal(err)
				}
				acc := map[int]float64{}
				for j, i := range idx {
					if _, ok := acc[i]; !ok {
						acc[i] = float64(ref[i])
					}
					acc[i] += 0.5 * float64(d[j])
				}
				for i, v := range acc {
					ref[i] = float32(v)
				}
				got, err := m.PullIndices(ctx, idx)
				if err != nil {
					t.Fatal(err)
				}
				for j, i := range idx {
					if got[j] != ref[i] {
						t.Fatalf("%d a block: w[%d] = %v, want %v", per, i, got[j], ref[i])
					}
				}
			}
			// More pairs than one call takes (and every block touched).
			big := make([]int, 150_000)
			d := make([]float32, len(big))
			for j := range big {
				big[j] = rng.IntN(n)
				d[j] = 1
			}
			if err := m.PushSparse(ctx, big, d, 0.25); err != nil {
				t.Fatal(err)
			}
			acc := map[int]float64{}
			for _, i := range big {
				if _, ok := acc[i]; !ok {
					acc[i] = float64(ref[i])
				}
				acc[i] += 0.25
			}
			for i, v := range acc {
				ref[i] = float32(v)
			}
			all, _ := m.Pull(ctx, 0, n)
			for i := range ref {
				if all[i] != ref[i] {
					t.Fatalf("after a push of 150,000 pairs: w[%d] = %v, want %v", i, all[i], ref[i])
				}
			}
			got, err := m.PullIndices(ctx, big)
			if err != nil {
				t.Fatal(err)
			}
			for j, i := range big {
				if got[j] != ref[i] {
					t.Fatalf("gather of 150,000: w[%d] = %v, want %v", i, got[j], ref[i])
				}
			}
			if v, _ := m.Version(ctx); v != 10 {
				t.Fatalf("version %d after 10 pushes", v)
			}
		})
	}
}

// TestGatherBadInput: empty, repeated, out-of-range and mismatched index
// lists, a corrupt block read by either path, a missing block.
func TestGatherBadInput(t *testing.T) {
	s, servers := open(t, 1, 64)
	ctx := context.Background()
	m, err := s.Create(ctx, "g", 1000, ps.Normal(0, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := m.Pull(ctx, 0, 1000)
	if v, err := m.PullIndices(ctx, nil); err != nil || len(v) != 0 {
		t.Fatalf("empty gather: %v, %v", v, err)
	}
	v, err := m.PullIndices(ctx, []int{999, 5, 5, 999, 0})
	if err != nil || !slices.Equal(v, []float32{ref[999], ref[5], ref[5], ref[999], ref[0]}) {
		t.Fatalf("repeated indices: %v, %v", v, err)
	}
	for _, idx := range [][]int{{-1}, {1000}, {3, 1 << 40}} {
		if _, err := m.PullIndices(ctx, idx); !errors.Is(err, ps.ErrBadInput) {
			t.Errorf("gather %v: %v, want ErrBadInput", idx, err)
		}
	}
	if err := m.PullIndicesInto(ctx, make([]float32, 1), []int{1, 2}); !errors.Is(err, ps.ErrBadInput) {
		t.Errorf("gather of 2 into 1: %v", err)
	}
	if err := m.PushSparse(ctx, []int{}, []float32{}, 1); err != nil {
		t.Errorf("empty scatter: %v", err)
	}
	rc := redis.NewClient(&redis.Options{Addr: servers[0].Addr})
	defer rc.Close()
	rc.Set(ctx, "wps:{g/2}:w", "short", 0)
	for _, idx := range [][]int{{130}, {128, 129, 130, 131, 140, 150, 160}} {
		if _, err := m.PullIndices(ctx, idx); !errors.Is(err, ps.ErrCorrupt) || !strings.Contains(err.Error(), "{g/2}") {
			t.Errorf("gather %v of a corrupt block: %v", idx, err)
		}
		if err := m.PushSparse(ctx, append([]int{1}, idx...), make([]float32, len(idx)+1), 1); !errors.Is(err, ps.ErrCorrupt) {
			t.Errorf("scatter %v into a corrupt block: %v", idx, err)
		}
	}
	if w, _ := m.PullIndices(ctx, []int{1}); w[0] != ref[1] {
		t.Fatalf("a scatter that failed on a corrupt block wrote block 0")
	}
	rc.Del(ctx, "wps:{g/3}:w")
	for _, idx := range [][]int{{200}, {192, 193, 194, 195, 196, 197}} {
		if _, err := m.PullIndices(ctx, idx); !errors.Is(err, ps.ErrNoModel) {
			t.Errorf("gather %v of a missing block: %v", idx, err)
		}
		if err := m.PushSparse(ctx, idx, make([]float32, len(idx)), 1); !errors.Is(err, ps.ErrNoModel) {
			t.Errorf("scatter %v into a missing block: %v", idx, err)
		}
	}
}
