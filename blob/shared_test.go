package blob_test

import (
	"context"
	"errors"
	"strings"
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

// TestOpenUnlinkedDriver: a URL of one of wren's schemes whose driver the
// program did not link (this test binary links fileblob only) fails with
// the import to add; an unknown scheme lists the known ones.
func TestOpenUnlinkedDriver(t *testing.T) {
	ctx := context.Background()
	for url, want := range map[string]string{
		"s3://bucket/prefix?endpoint=http://127.0.0.1:1": `add import _ "github.com/wrenml/wren/blob/s3blob"`,
		"mem://x":     `add import _ "github.com/wrenml/wren/blob/memblob"`,
		"gs://bucket": "(known: file)",
		"":            "(known: file)",
	} {
		_, err := blob.Open(ctx, url)
		if !errors.Is(err, blob.ErrUnknownScheme) || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q): %v, want ErrUnknownScheme and %s", url, err, want)
		}
	}
}
