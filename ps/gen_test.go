package ps

import (
	"testing"

	"github.com/wrenml/wren/ps/internal/luagen"
)

// TestDenseAddGenerated keeps the embedded script in step with its generator.
func TestDenseAddGenerated(t *testing.T) {
	if denseAddSrc != luagen.DenseAdd() {
		t.Fatal("ps/lua/dense_add.lua is stale: run go generate ./ps")
	}
}
