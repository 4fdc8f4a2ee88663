package memblob_test

import (
	"testing"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/blob/blobtest"
	"github.com/wrenml/wren/blob/memblob"
)

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return memblob.New() }, blobtest.Options{LargeSize: 1 << 20})
}
