package ps_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wrenml/wren/internal/redisserver"
	"github.com/wrenml/wren/internal/testenv"
	"github.com/wrenml/wren/ps"
)

// TestNotes: a note travels with a push, dense or sparse, on one shard or
// several and on a cluster; the last push's note is the one read; a push
// refused for bad input writes no note; a worker's grant writes and reads
// its model's notes but cannot delete them or reach another model's.
func TestNotes(t *testing.T) {
	ctx := context.Background()
	for _, setup := range []string{"one", "three", "cluster"} {
		t.Run(setup, func(t *testing.T) {
			var opts ps.Options
			switch setup {
			case "one":
				opts = ps.Options{Addrs: testenv.Addrs(testenv.StartRedis(t, 1, redisserver.Options{Password: "pw"})), Password: "pw", BlockSize: 8}
			case "three":
				opts = ps.Options{Addrs: testenv.Addrs(testenv.StartRedis(t, 3, redisserver.Options{Password: "pw"})), Password: "pw", BlockSize: 8}
			default:
				opts = ps.Options{Addrs: testenv.StartRedisCluster(t, 3), Cluster: true, BlockSize: 8}
			}
			admin, err := ps.Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			for _, name := range []string{"m", "other"} {
				if _, err := admin.Create(ctx, name, 100, ps.Zeros); err != nil {
					t.Fatal(err)
				}
			}
			g, err := admin.Grant(ctx, "m")
			if err != nil {
				t.Fatal(err)
			}
			defer g.Revoke(ctx)
			w, err := ps.Open(ctx, g.Options)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			m, err := w.Model(ctx, "m")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Note(ctx, "run1/w0"); !errors.Is(err, ps.ErrNoNote) {
				t.Fatalf("a missing note: %v", err)
			}
			d := make([]float32, 100)
			if err := m.Push(ctx, 0, d, 1, ps.WithNote("run1/w0", []byte("first"))); err != nil {
				t.Fatal(err)
			}
			if err := m.PushSparse(ctx, []int{5, 99}, []float32{1, 1}, 1, ps.WithNote("run1/w0", []byte("second")), ps.WithNote("run1/w1", []byte("x"))); err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string]string{"run1/w0": "second", "run1/w1": "x"} {
				if b, err := m.Note(ctx, name); err != nil || string(b) != want {
					t.Fatalf("note %s: %q, %v", name, b, err)
				}
			}
			// Refused pushes write no note.
			nan := []float32{float32(negZeroNaN())}
			if err := m.Push(ctx, 0, nan, 1, ps.WithNote("run1/w0", []byte("nan"))); err == nil {
				t.Fatal("a NaN push accepted")
			}
			if err := m.Push(ctx, 99, d[:5], 1, ps.WithNote("run1/w0", []byte("range"))); err == nil {
				t.Fatal("a push out of range accepted")
			}
			if b, _ := m.Note(ctx, "run1/w0"); string(b) != "second" {
				t.Fatalf("a refused push wrote its note: %q", b)
			}
			for _, bad := range []ps.PushOption{ps.WithNote("", nil), ps.WithNote("a b", nil), ps.WithNote("big", bytes.Repeat([]byte("x"), 64<<10+1))} {
				if err := m.Push(ctx, 0, d[:1], 1, bad); !errors.Is(err, ps.ErrBadInput) {
					t.Fatalf("a bad note: %v", err)
				}
			}
			if err := m.DeleteNotes(ctx, "run1/w0"); err == nil {
				t.Fatal("a worker deleted a note")
			}
			am, err := admin.Model(ctx, "m")
			if err != nil {
				t.Fatal(err)
			}
			if err := am.SetNote(ctx, "kind", []byte("softmax")); err != nil {
				t.Fatal(err)
			}
			if b, err := m.Note(ctx, "kind"); err != nil || string(b) != "softmax" {
				t.Fatalf("a note set without a push: %q, %v", b, err)
			}
			if err := am.DeleteNotes(ctx, "run1/w0", "run1/w1", "never-written"); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Note(ctx, "run1/w1"); !errors.Is(err, ps.ErrNoNote) {
				t.Fatalf("a deleted note: %v", err)
			}
			if om, err := w.Model(ctx, "other"); err == nil {
				if err := om.Push(ctx, 0, d[:1], 1, ps.WithNote("x", []byte("y"))); err == nil || !strings.Contains(strings.ToLower(err.Error()), "noperm") {
					t.Fatalf("a note on another model: %v", err)
				}
			}
		})
	}
}

func negZeroNaN() float64 {
	var z float64
	return z / z
}
