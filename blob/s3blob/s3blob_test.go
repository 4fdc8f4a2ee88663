package s3blob_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/blob/blobtest"
	"github.com/wrenml/wren/blob/s3blob"
	"github.com/wrenml/wren/internal/testenv"
)

var bucketN atomic.Int32

func TestConformance(t *testing.T) {
	srv := testenv.StartS3(t)
	blobtest.Run(t, func(t *testing.T) blob.Store {
		name := fmt.Sprintf("bucket-%d", bucketN.Add(1))
		srv.CreateBucket(t, name)
		// A prefix checks that keys are mapped below it and stripped from List.
		s, err := blob.Open(context.Background(), "s3://"+name+"/pre/fix?endpoint="+srv.Endpoint+"&part_size=5242880")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, blobtest.Options{LargeSize: 12 << 20, Reopen: true}) // 12 MiB: three 5 MiB parts
}

func TestUnreachableEndpoint(t *testing.T) {
	testenv.SetS3Env(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens here now
	url := "s3://bucket?endpoint=http://" + addr
	s, err := blob.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = blob.PutBytes(ctx, s, "k", []byte("x"), blob.PutOptions{})
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("put to unreachable endpoint: %v; want an error naming %s", err, addr)
	}
	if errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("unreachable endpoint reported as not found: %v", err)
	}
}

// TestMissingBucket: a put to a bucket that does not exist fails with an
// error naming it, or (SeaweedFS creates buckets on first write) stores
// the object: never a put reported done that lost the data.
func TestMissingBucket(t *testing.T) {
	srv := testenv.StartS3(t)
	s, err := s3blob.Open(context.Background(), s3blob.Options{Bucket: "nope", Endpoint: srv.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	err = blob.PutBytes(context.Background(), s, "k", []byte("x"), blob.PutOptions{})
	if err != nil {
		if !strings.Contains(err.Error(), "nope") {
			t.Fatalf("put to missing bucket: %v, want an error naming it", err)
		}
		if _, err := s.Get(context.Background(), "k"); err == nil {
			t.Fatal("get from missing bucket succeeded")
		}
		return
	}
	b, err := blob.ReadAll(context.Background(), s, "k")
	if err != nil || string(b) != "x" {
		t.Fatalf("the put to an auto-created bucket succeeded but the object reads %q, %v", b, err)
	}
}
