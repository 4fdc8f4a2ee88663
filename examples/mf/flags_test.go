package main

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadFlags: -workers 0 failed on "0 shards of 89966 ratings", -epochs
// -1 trained the default, -rank 0 printed the generator's spec; each is
// refused, naming the flag, before anything starts.
func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		flag                  string
		workers, epochs, rank int
		lr                    float64
	}{{"-workers", 0, 1, 2, 1}, {"-epochs", 2, 0, 2, 1}, {"-epochs", 2, -1, 2, 1}, {"-rank", 2, 1, 0, 1},
		{"-lr", 2, 1, 2, 0}, {"-lr", 2, 1, 2, math.NaN()}, {"-lr", 2, 1, 2, math.Inf(1)}} {
		_, _, err := run(context.Background(), "", c.workers, c.epochs, c.rank, c.lr, "", filepath.Join(dir, "store"))
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
