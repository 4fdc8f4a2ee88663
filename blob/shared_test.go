package blob_test

import (
	"context"
	"testing"

	"github.com/wrenml/wren/blob"
	_ "github.com/wrenml/wren/blob/fileblob"
)

// TestShared: a URL is opened once per process; a directory path is its
// file:// store; a URL that cannot be opened is not kept.
func TestShared(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := blob.Shared(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := blob.Shared(ctx, "file://"+dir)
	if err != nil || a != b {
		t.Fatalf("opened twice: %p %p, %v", a, b, err)
	}
	c, err := blob.Shared(ctx, dir)
	if err != nil || c != a {
		t.Fatalf("the directory path: %p, %v", c, err)
	}
	if _, err := blob.Shared(ctx, "nosuchscheme://x"); err == nil {
		t.Fatal("an unknown scheme opened")
	}
}
