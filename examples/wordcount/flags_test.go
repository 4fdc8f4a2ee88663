package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadFlags: -top -1 panicked after the count; -partitions -1 and
// -maxline 0 ran with defaults. Each is refused, naming the flag, before
// anything starts.
func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		flag                     string
		partitions, top, maxLine int
	}{{"-top", 0, -1, 100}, {"-partitions", -1, 3, 100}, {"-maxline", 0, 3, 0}, {"-maxline", 0, 3, -4}} {
		o := options{zipf: "1MB", store: filepath.Join(dir, "store"), partitions: c.partitions, top: c.top, maxLine: c.maxLine}
		if err := run(context.Background(), o); err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
