package blob_test

import (
	"context"
	"fmt"
	"os"

	"github.com/wrenml/wren/blob"
	_ "github.com/wrenml/wren/blob/fileblob"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "blob-example-")
	defer os.RemoveAll(dir)
	s, err := blob.Open(ctx, "file://"+dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	blob.PutBytes(ctx, s, "jobs/1/status/0", []byte("done"), blob.PutOptions{IfNotExist: true})
	err = blob.PutBytes(ctx, s, "jobs/1/status/0", []byte("again"), blob.PutOptions{IfNotExist: true})
	fmt.Println(err != nil)
	b, _ := blob.ReadAll(ctx, s, "jobs/1/status/0")
	fmt.Println(string(b))
	_, err = s.Stat(ctx, "../escape")
	fmt.Println(err)
	// Output:
	// true
	// done
	// blob: invalid key "../escape": path segment ".."
}
