// Command gen writes ps/lua/dense_add.lua from package luagen; go generate
// ./ps runs it.
package main

import (
	"fmt"
	"os"

	"github.com/wrenml/wren/ps/internal/luagen"
)

func main() {
	if err := os.WriteFile(os.Args[1], []byte(luagen.DenseAdd()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
