package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadFlags: -size 0 featurized at 256 and reported "0x0"; -per-call 0
// and -parallel -1 ran with defaults. Each is refused, naming the flag,
// before anything is written.
func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		flag                    string
		size, perCall, parallel int
	}{{"-size", 0, 2, 1}, {"-size", 31, 2, 1}, {"-size", 6, 2, 1}, {"-per-call", 32, 0, 1}, {"-parallel", 32, 2, -1}} {
		p := params{in: filepath.Join(dir, "in"), out: filepath.Join(dir, "out"), synth: "2x3", store: filepath.Join(dir, "jobs"), size: c.size, perCall: c.perCall, parallel: c.parallel}
		if err := run(context.Background(), p); err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%+v: %v", c, err)
		}
		if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 0 {
			t.Fatalf("%+v: wrote %v", c, m)
		}
	}
}
