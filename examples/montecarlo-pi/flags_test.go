package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadFlags: a flag the example cannot run as asked is an error naming
// it, before anything starts (-tasks -1 panicked; -tasks 0 printed
// "pi ~ NaN"; -darts 0 ran).
func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		flag                   string
		tasks, darts, parallel int
	}{{"-tasks", 0, 10, 1}, {"-tasks", -1, 10, 1}, {"-darts", 2, 0, 1}, {"-darts", 2, -5, 1}, {"-parallel", 2, 10, -1}} {
		err := run(context.Background(), c.tasks, c.darts, filepath.Join(dir, "store"), filepath.Join(dir, "t.png"), c.parallel)
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
