package ps

import (
	"testing"

	"github.com/wrenml/wren/ps/internal/luagen"
)

// TestScriptsGenerated keeps the embedded scripts in step with their generator.
func TestScriptsGenerated(t *testing.T) {
	if denseAddSrc != luagen.DenseAdd() {
		t.Fatal("ps/lua/*.lua are stale: run go generate ./ps")
	}
}
