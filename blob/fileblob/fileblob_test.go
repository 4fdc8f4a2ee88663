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

// TestSyncModes: user data is fsynced by default, a running job's
// ephemeral objects are not; sync=always and sync=never in the URL change
// that, and the URL keeps the mode.
func TestSyncModes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, c := range []struct {
		url               string
		durable, ephemera int64 // fsyncs of a durable and of an ephemeral put
	}{
		{"file://" + dir, 1, 0},
		{"file://" + dir + "?sync=auto", 1, 0},
		{"file://" + dir + "?sync=always", 1, 1},
		{"file://" + dir + "?sync=never", 0, 0},
	} {
		s, err := blob.Open(ctx, c.url)
		if err != nil {
			t.Fatal(err)
		}
		n0 := fileblob.Syncs()
		blob.PutBytes(ctx, s, "d", []byte("x"), blob.PutOptions{})
		n1 := fileblob.Syncs()
		blob.PutBytes(ctx, s, "e", []byte("x"), blob.PutOptions{Ephemeral: true})
		n2 := fileblob.Syncs()
		if n1-n0 != c.durable || n2-n1 != c.ephemera {
			t.Errorf("%s: %d fsyncs for a durable put, %d for an ephemeral one; want %d and %d", c.url, n1-n0, n2-n1, c.durable, c.ephemera)
		}
		s2, err := blob.Open(ctx, s.URL())
		if err != nil || s2.URL() != s.URL() {
			t.Errorf("%s: reopened as %v, %v", c.url, s2, err)
		}
	}
	for _, bad := range []string{"?sync=sometimes", "?sync=always&sync=never", "?fsync=always"} {
		if _, err := blob.Open(ctx, "file://"+dir+bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
