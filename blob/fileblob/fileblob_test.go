package fileblob_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/blob/blobtest"
	"github.com/wrenml/wren/blob/fileblob"
)

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := fileblob.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, blobtest.Options{Reopen: true})
}

// TestNoEscape checks that no key reaches a file outside the root, and that
// failed puts leave no temporary files behind.
func TestNoEscape(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "store")
	s, err := fileblob.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(parent, "secret")
	os.WriteFile(secret, []byte("s"), 0o600)
	ctx := context.Background()
	for _, k := range []string{"../secret", "x/../../secret", "/" + secret} {
		if _, err := s.Get(ctx, k); err == nil {
			t.Errorf("Get(%q) reached outside the root", k)
		}
		if err := blob.PutBytes(ctx, s, k, []byte("overwrite"), blob.PutOptions{}); err == nil {
			t.Errorf("Put(%q) succeeded", k)
		}
	}
	if b, _ := os.ReadFile(secret); string(b) != "s" {
		t.Fatal("secret was overwritten")
	}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if fi != nil && strings.Contains(fi.Name(), blob.TempPrefix) {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

func TestOpenURL(t *testing.T) {
	dir := t.TempDir()
	s, err := blob.Open(context.Background(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.(*fileblob.Store).Root(); got != dir {
		t.Fatalf("root = %q, want %q", got, dir)
	}
	if _, err := blob.Open(context.Background(), "nope://x"); err == nil || !strings.Contains(err.Error(), "nope://x") {
		t.Fatalf("unknown scheme: %v, want an error naming the URL", err)
	}
}
